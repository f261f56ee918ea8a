"""The ``volunteers`` table: one CRM-facing state per Vome user id, and its snapshots on ``vome.volunteers``.

Fed by ``vome.volunteers.feed`` (keyed by user id; one value per accepted delivery, see :func:`feed_value`). The
state is a JSON-ready dict::

    {"user_id": "usr_…", "has_profile": true, "archived": false, "ensured": false,
     "bookings": {"bkg_1": true, "bkg_2": false},                      # false = deleted
     "forms": {"sub_1": {"form_id": …, "status": …, "submitted_at": …}, "sub_2": null},   # null = deleted
     "sequences": {"asg_1": {"sequence_id": …, "steps_done": 2, "steps_total": 5, "updated_at": …}},
     "last_event_id": "<sha256>", "updated_at": "<ISO-8601 of the fold's now>"}

or, once the volunteer was erased, the erasure marker ``{"user_id": "usr_…", "erased": true, "erased_at": …}``.

Transition rules of :func:`fold_volunteer`:

- ``profile.created`` sets ``has_profile`` and clears ``archived``; ``profile.updated`` sets ``has_profile``;
  ``profile.archived`` sets both ``has_profile`` and ``archived``.
- ``*.created|updated`` of a booking, submission or assignment stores the entity under its id;
  ``*.deleted`` leaves a deletion marker (``false`` / ``null``) in its place. A marker is final: Vome never
  reuses an id, so a late or replayed create/update of a deleted entity changes nothing.
- An assignment update whose ``updated_at`` is older than the stored one is stale and changes nothing.
  Submissions have no update time; the last delivery wins.
- ``profile.deleted`` (erasure) replaces the state by the erasure marker and tombstones ``vome.volunteers``.
  The marker is final too: every later value of the volunteer (a booking delivered late, a replay, even a
  ``profile.created``: Vome does not reuse user ids) changes nothing and sends nothing. It holds the user id
  only, the least that can keep an erased volunteer from being re-created in the CRM.

The CRM commands of Vome are sent from here, not from stage one, because only the table knows the volunteer:
a value carries the commands stage one built (``crm``) and the contact it would ensure (``ensure``, see
:mod:`app.domains.vome.crm`). When the value applies, the fold sends the ensure command first, unless the
contact is known to exist (a profile event was applied, or an ensure was already sent: a booking's copy of the
name must not overwrite what a later profile update set), then the value's own commands. A value that does
not apply (a deleted entity, a stale update, an erased volunteer) sends nothing, so a late booking cannot
re-create a deleted meeting or an erased contact. All of a volunteer's commands therefore leave in the order
of its feed partition, erasure included.

Idempotency: every rule sets a value keyed by the entity's id instead of counting deliveries, so applying
the same value twice leaves the state as applying it once (redeliveries of stage one replay values in their
original order). A fold that changes nothing returns ``changed=False`` and emits nothing; otherwise it emits
the snapshot (:func:`snapshot`), keyed by user id, on the compacted ``vome.volunteers``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.core.clock import iso
from app.core.records import Emit, Folded, Processed
from app.core.validation import validate
from app.sinks.crm.commands import CrmCommand, as_emit

#: the table this module folds, fed by FEED_TOPIC
VOLUNTEERS_TABLE = "volunteers"
FEED_TOPIC = "vome.volunteers.feed"
SNAPSHOT_TOPIC = "vome.volunteers"


class FeedValue(BaseModel):
    """One value on ``vome.volunteers.feed``: only what the table needs, all allow-listed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    trigger: str
    user_id: str = Field(min_length=1)
    entity_id: str = Field(min_length=1)
    kind: Literal["profile", "booking", "form_submission", "sequence_assignment"]
    op: Literal["created", "updated", "archived", "deleted"]
    form_id: str | None = None
    status: str | None = None
    submitted_at: AwareDatetime | None = None
    sequence_id: str | None = None
    steps_done: int | None = None
    steps_total: int | None = None
    updated_at: AwareDatetime | None = None
    crm: list[CrmCommand] = Field(default_factory=list)
    ensure: CrmCommand | None = None


def feed_value(
    processed: Processed, crm: list[CrmCommand] | None = None, ensure: CrmCommand | None = None
) -> dict[str, Any]:
    """What stage one puts on the feed for an accepted delivery, with the CRM commands the fold may send: a
    :class:`FeedValue` as JSON, every field present. The fold validates it on the way in; it is built here from
    values that are JSON already (the enriched record, dumped commands), so it is not validated twice.
    ``tests/unit/test_vome_state.py`` holds every sample's value to the model."""
    e = processed.enriched
    trigger: str = e["trigger"]
    kind, op = trigger.split(".", 1)
    data = e["data"]
    form_id = status = submitted_at = sequence_id = steps_done = steps_total = updated_at = None
    if kind == "form_submission":
        form_id = (data.get("form") or {}).get("id")
        status = data.get("submission_status")
        submitted_at = data.get("created_at")
    elif kind == "sequence_assignment":
        sequence_id = (data.get("sequence_info") or {}).get("id")
        steps_done = e["onboarding"]["steps_done"]
        steps_total = e["onboarding"]["steps_total"]
        updated_at = data.get("updated_at") or data.get("created_at")
    return {
        "event_id": e["event_id"],
        "trigger": trigger,
        "user_id": e["user_id"],
        "entity_id": e["entity_id"],
        "kind": kind,
        "op": op,
        "form_id": form_id,
        "status": status,
        "submitted_at": submitted_at,
        "sequence_id": sequence_id,
        "steps_done": steps_done,
        "steps_total": steps_total,
        "updated_at": updated_at,
        "crm": [c.model_dump(mode="json") for c in crm or ()],
        "ensure": None if ensure is None else ensure.model_dump(mode="json"),
    }


def empty_state(user_id: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "has_profile": False,
        "archived": False,
        "ensured": False,
        "bookings": {},
        "forms": {},
        "sequences": {},
        "last_event_id": None,
        "updated_at": None,
    }


def _stamp(ts: datetime | None) -> str | None:
    return None if ts is None else iso(ts)


def _older(incoming: datetime | None, stored: str | None) -> bool:
    if incoming is None or stored is None:
        return False
    return incoming < datetime.fromisoformat(stored)


def _apply(state: dict[str, Any], v: FeedValue) -> dict[str, Any]:
    """The new state, without bookkeeping fields; returns ``state`` itself when nothing applies."""
    if v.kind == "profile":
        archived = {"created": False, "archived": True}.get(v.op, state["archived"])
        return {**state, "has_profile": True, "archived": archived}
    if v.kind == "booking":
        if state["bookings"].get(v.entity_id) is False:
            return state
        return {**state, "bookings": {**state["bookings"], v.entity_id: v.op != "deleted"}}
    field = "forms" if v.kind == "form_submission" else "sequences"
    entries: dict[str, Any] = state[field]
    if v.entity_id in entries and entries[v.entity_id] is None:
        return state
    entry: dict[str, Any] | None
    if v.op == "deleted":
        entry = None
    elif v.kind == "form_submission":
        entry = {"form_id": v.form_id, "status": v.status, "submitted_at": _stamp(v.submitted_at)}
    else:
        stored = entries.get(v.entity_id)
        if stored is not None and _older(v.updated_at, stored["updated_at"]):
            return state
        entry = {
            "sequence_id": v.sequence_id,
            "steps_done": v.steps_done,
            "steps_total": v.steps_total,
            "updated_at": _stamp(v.updated_at),
        }
    return {**state, field: {**entries, v.entity_id: entry}}


def _instant(ts: str | None) -> datetime:
    return datetime.fromisoformat(ts) if ts else datetime.min.replace(tzinfo=UTC)


def snapshot(state: dict[str, Any]) -> dict[str, Any]:
    """The CRM-facing view of a state: what ``vome.volunteers`` carries and the HTTP query returns."""
    forms = [(sid, f) for sid, f in state["forms"].items() if f is not None]
    latest = max(forms, key=lambda item: (_instant(item[1]["submitted_at"]), item[0]), default=None)
    sequences = [s for s in state["sequences"].values() if s is not None]
    return {
        "user_id": state["user_id"],
        "has_profile": state["has_profile"],
        "archived": state["archived"],
        "bookings_count": sum(1 for active in state["bookings"].values() if active),
        "latest_form": None if latest is None else {"submission_id": latest[0], **latest[1]},
        "onboarding": {
            "assignments": len(sequences),
            "steps_done": sum(s["steps_done"] or 0 for s in sequences),
            "steps_total": sum(s["steps_total"] or 0 for s in sequences),
        },
        "updated_at": state["updated_at"],
    }


def is_erased(state: dict[str, Any] | None) -> bool:
    return bool(state and state.get("erased"))


def render(state: dict[str, Any]) -> dict[str, Any] | None:
    """What the HTTP query answers: the snapshot, or None (404) for an erased volunteer."""
    return None if is_erased(state) else snapshot(state)


def _commands(commands: list[CrmCommand]) -> list[Emit]:
    return [as_emit(c) for c in commands]


def fold_volunteer(state: dict[str, Any] | None, value: Any, now: datetime) -> Folded:
    if value is None:
        # Feeds written before erasures became markers carried a tombstone: delete the key as they meant.
        if state is None:
            return Folded(None, changed=False)
        return Folded(None, emits=[Emit(SNAPSHOT_TOPIC, state["user_id"], None)])
    v = validate(FeedValue, value)
    if v.trigger == "profile.deleted":
        # Erasing again is harmless and makes a replayed erasure certain; the snapshot goes only once.
        marker = {"user_id": v.user_id, "erased": True, "erased_at": iso(now)}
        if is_erased(state):
            return Folded(state, emits=_commands(v.crm), changed=False, outcome="erased")
        return Folded(marker, emits=[Emit(SNAPSHOT_TOPIC, v.user_id, None), *_commands(v.crm)])
    if is_erased(state):
        return Folded(state, changed=False, outcome="erased")
    current = state if state is not None else empty_state(v.user_id)
    new = _apply(current, v)
    if new is current:
        return Folded(current, changed=False)
    known = current["has_profile"] or current.get("ensured", False)
    send = [v.ensure] if v.ensure is not None and not known else []
    if send or v.kind == "profile":
        new = {**new, "ensured": True}
    emits = _commands([*send, *v.crm])
    if state is not None and new == current:
        return Folded(current, emits=emits, changed=False)
    new = {**new, "last_event_id": v.event_id, "updated_at": iso(now)}
    return Folded(new, emits=[Emit(SNAPSHOT_TOPIC, v.user_id, snapshot(new)), *emits])
