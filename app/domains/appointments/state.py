"""The ``appointments`` table: one appointment's current state and its transition history, keyed by its id.

Fed by ``appointments.enriched`` (already keyed by appointment id). Transition rules, per delivered value:

- **Duplicate** (its ``event_id`` is the last applied one or is in the history): no change, no emit. Stage one
  is at-least-once, so a value can arrive twice after a crash; the second delivery must count for nothing.
- **Stale** (its ``updated_at`` is strictly older than the stored ``updated_at``): the state is not applied;
  the history gets an entry marked ``stale`` and ``stale_count`` goes up. Webhooks can overtake each other,
  and an older snapshot of the appointment must not overwrite a newer one. No CRM command either: it would
  roll the CRM activity back. The fold reports outcome ``stale`` so the runtime counts it apart from applied.
- **Applied** (the first value, or ``updated_at`` equal or newer): the appointment's current fields are
  replaced by the value's, the history gets ``from`` (the stored status, None for the first) -> ``to``,
  ``applied_count`` goes up, and the CRM commands of the update are emitted (see
  :mod:`app.domains.appointments.crm`). Equal ``updated_at`` applies: two updates within one upstream
  clock tick are taken in arrival order.
- **Tombstone** (``value`` None, an erasure): the key is deleted.

The history keeps the last :data:`HISTORY_LIMIT` entries, which bounds the state; a duplicate older than that
would be judged stale (counted, never applied), so a long-forgotten redelivery still cannot change the
appointment. ``now`` is unused: the state depends on event content only, so a replay reproduces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.records import Folded
from app.domains.appointments.crm import crm_commands
from app.sinks.crm.commands import as_emit

TABLE = "appointments"
HISTORY_LIMIT = 100

#: The enriched fields that make up an appointment's current state.
CURRENT_FIELDS: tuple[str, ...] = (
    "appointment_id",
    "status",
    "status_group",
    "event_type",
    "event_id",
    "updated_at",
    "start",
    "end",
    "duration_minutes",
    "meeting_type",
    "subject_id",
    "office_id",
    "listing_id",
    "primary_employee_id",
)


def _history_entry(value: Mapping[str, Any], from_status: str | None, *, stale: bool) -> dict[str, Any]:
    return {
        "event_id": value["event_id"],
        "event_type": value["event_type"],
        "from": from_status,
        "to": value["status"],
        "updated_at": value["updated_at"],
        "stale": stale,
    }


def _seen(state: Mapping[str, Any], event_id: str) -> bool:
    return state.get("event_id") == event_id or any(h["event_id"] == event_id for h in state["history"])


def _older(value: Mapping[str, Any], state: Mapping[str, Any]) -> bool:
    return datetime.fromisoformat(value["updated_at"]) < datetime.fromisoformat(state["updated_at"])


def _with_entry(history: list[dict[str, Any]], entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [*history, entry][-HISTORY_LIMIT:]


def fold_appointment(state: Any, value: Any, now: datetime) -> Folded:
    """One enriched appointment into the stored state; rules in the module docstring."""
    if value is None:
        return Folded(None, changed=state is not None)
    if state is not None and _seen(state, value["event_id"]):
        return Folded(state, changed=False)
    if state is not None and _older(value, state):
        entry = _history_entry(value, state["status"], stale=True)
        return Folded(
            {
                **state,
                "stale_count": state["stale_count"] + 1,
                "history": _with_entry(state["history"], entry),
            },
            outcome="stale",
        )
    previous = state or {"applied_count": 0, "stale_count": 0, "history": []}
    entry = _history_entry(value, previous.get("status"), stale=False)
    applied = {
        **{k: value.get(k) for k in CURRENT_FIELDS},
        "customer_id": (value.get("customer") or {}).get("id"),
        "applied_count": previous["applied_count"] + 1,
        "stale_count": previous["stale_count"],
        "history": _with_entry(previous["history"], entry),
    }
    return Folded(applied, [as_emit(c) for c in crm_commands(value)])
