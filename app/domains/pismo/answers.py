"""What the HTTP answers show of the ``phases`` table: what a caller sees, and which part of the table is local.

The stored state keeps ``high_water`` (raw partition -> offset) for the fold's idempotency; it is bookkeeping
about Kafka positions, not a fact about the migration, so answers leave it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

_INTERNAL = frozenset({"high_water"})


def public_phase(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in _INTERNAL}


def local_phases(table: Any) -> dict[str, dict[str, Any]]:
    """Every phase in the partitions this worker holds (the store iterates active partitions only)."""
    return {
        key.decode(): public_phase(orjson.loads(value)) for key, value in table.items() if value is not None
    }


def held_partitions(app: Any, table: Any, default_total: int) -> tuple[list[int], int]:
    """The table partitions this worker owns (by its changelog topic) and how many there are in all."""
    changelog = table.changelog_topic_name
    held = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog)
    total = app.consumer.topic_partitions(changelog) or default_total
    return held, int(total)
