"""Reading the ``phases`` table for HTTP answers: what a caller sees, and which part of the table is local.

The stored state keeps ``high_water`` (raw partition -> offset) for the fold's idempotency; it is bookkeeping
about Kafka positions, not a fact about the migration, so answers leave it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

PHASES_TABLE = "phases"
_INTERNAL = frozenset({"high_water"})


def public_phase(state: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k not in _INTERNAL}


def local_phases(table: Any) -> dict[str, dict[str, Any]]:
    """Every phase in the partitions this worker holds (the store iterates active partitions only)."""
    return {
        key.decode(): public_phase(orjson.loads(value)) for key, value in table.items() if value is not None
    }
