"""The ``phases`` table: per migration phase, how many customers migrated, by operation and result.

Keyed by :func:`phase_key` (the phase id, ``"~"`` for results without one), fed by ``pismo.phase-results``, one
value per accepted event (see :func:`phase_result`). The state is a JSON-ready dict::

    {"phase_id": "Rollout_Jan2022" | None,
     "total": 3,
     "by_status": {"SUCCESS": 2, "FAIL": 1},
     "by_operation": {"CREATION": {"SUCCESS": 1, "FAIL": 1}, "UPDATE": {...}, "NONE": {...}},
     "last_event_id": "<sha256>", "updated_at": "<ISO-8601 of the fold's now>",
     "high_water": {"pismo.raw/3": 1234}}

Transition rules of :func:`fold_phase`:

- A result adds one to ``total``, to ``by_status[status]`` and to ``by_operation[operation][status]`` (a
  result without ``operation`` counts under ``"NONE"``). Every operation/status pair is always present, so a
  reader never has to tell "zero" from "missing".
- Idempotency without remembering every event id: each value names the raw record it came from (topic,
  partition, offset), and the state keeps, per raw partition, the highest raw offset already counted
  (``high_water``). Stage one reads a raw partition in offset order and produces each feed key in that order,
  so a value at or below the high-water mark is a redelivery (a crash between produce and commit replays the
  same raw offsets) and changes nothing (``changed=False``). A genuine re-publication of the same event sits
  at a new offset, but never reaches the feed: stage one dedupes it on the event id. The state stays a few
  bytes per raw partition however many customers a phase migrates, where a set of counted ids would grow
  without bound and be rewritten to the changelog on every update.
- A value without source coordinates (offset < 0: offline tools, ``switchyard check``) is always counted; only
  the worker, which always has coordinates, can see redeliveries.
- A tombstone (``None``) changes nothing: counts carry no personal data, so there is nothing to erase.
- Nothing is emitted: the table is read over HTTP, not streamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.clock import iso
from app.core.errors import EnrichError
from app.core.records import Folded

#: the table this module folds, one row per migration phase
PHASES_TABLE = "phases"
STATUSES = ("SUCCESS", "FAIL")
OPERATIONS = ("CREATION", "UPDATE", "NONE")
#: The key of results without a phase. No phase id maps to it (see :func:`phase_key`).
PHASELESS_KEY = "~"


def phase_key(phase_id: str | None) -> str:
    """The table key of a phase: the phase id itself, with one ``~`` put in front when it starts with ``~``;
    ``"~"`` alone for results without a phase.

    The seed's ``phase_id`` is any string, so no spelling is free for "no phase" unless the ids are escaped. This
    escape is injective (drop one leading ``~`` to get the id back), leaves every id that does not start with
    ``~`` unchanged (readable keys and URLs), and never yields ``"~"`` for an id: ``"~"`` becomes ``"~~"`` and
    ``""`` stays ``""``. The key is also what ``GET /api/pismo/phases/{key}`` takes, so Faust's router sends
    the request to the worker holding the key's partition.
    """
    if phase_id is None:
        return PHASELESS_KEY
    return "~" + phase_id if phase_id.startswith("~") else phase_id


def phase_result(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The feed value stage one produces for an accepted event (from its audit record)."""
    return {
        "event_id": audit["event_id"],
        "phase_id": audit["migration"]["phase_id"],
        "migration_id": audit["migration"]["id"],
        "status": audit["status"],
        "operation": audit["operation"] or "NONE",
        "source": dict(audit["source"]),
    }


def empty_counts() -> dict[str, dict[str, int]]:
    return {op: dict.fromkeys(STATUSES, 0) for op in OPERATIONS}


def empty_state(phase_id: str | None) -> dict[str, Any]:
    return {
        "phase_id": phase_id,
        "total": 0,
        "by_status": dict.fromkeys(STATUSES, 0),
        "by_operation": empty_counts(),
        "last_event_id": None,
        "updated_at": None,
        "high_water": {},
    }


def fold_phase(state: dict[str, Any] | None, value: Mapping[str, Any] | None, now: datetime) -> Folded:
    if value is None:
        return Folded(state, changed=False)
    status, operation = value.get("status"), value.get("operation")
    source = value.get("source")
    if status not in STATUSES or operation not in OPERATIONS or not isinstance(source, Mapping):
        raise EnrichError("phase feed value lacks a known status, operation or source", code="FEED-INVALID")
    current = state if state is not None else empty_state(value.get("phase_id"))
    offset = int(source.get("offset", -1))
    partition_key = f"{source.get('topic', '')}/{source.get('partition', -1)}"
    if offset >= 0 and offset <= current["high_water"].get(partition_key, -1):
        return Folded(current, changed=False)
    by_operation = {op: dict(counts) for op, counts in current["by_operation"].items()}
    by_operation[operation][status] += 1
    high_water = dict(current["high_water"])
    if offset >= 0:
        high_water[partition_key] = offset
    new = {
        **current,
        "total": current["total"] + 1,
        "by_status": {**current["by_status"], status: current["by_status"][status] + 1},
        "by_operation": by_operation,
        "last_event_id": value.get("event_id"),
        "updated_at": iso(now),
        "high_water": high_water,
    }
    return Folded(new)
