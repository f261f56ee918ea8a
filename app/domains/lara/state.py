"""Lära's four tables as pure folds, chained so that each is fed by a topic keyed by its own key.

::

    lara.raw --process/route--> lara.identities.feed (custom field) --fold_identity--+
             \\                                                                       v
              +---------------> lara.statuses.feed (member key) ----fold_timeline----+
               \\                                                                     +--> lara.compliance.feed
                +-------------> lara.cycles.feed (cycle id) ------fold_cycle---------+      (member key)
                                                                                              |
                                                       lara.compliance <--fold_compliance-----+

**Identity** (key: ``customFieldAPIName:customFieldValue``). A member record that names a custom field goes
through this table; one naming the user only goes straight to the timeline. Progress names the user
(``memberId``), so a member known to the status records by custom field alone would never meet their credits.
A record naming both the user and the custom field *links* them (the seed's requests carry both): from then on
every record of the custom field is forwarded to the user's timeline, re-keyed and renamed to the user. Before
any link the member is **unresolved**: its records are forwarded under the custom-field key (so its timeline
and compliance exist, marked ``identity: unresolved``, and count under outcome ``unresolved`` of
``switchyard_table_updates_total{table="lara.identities"}``) and kept in ``pending`` (the last
:data:`PENDING_KEPT`; a full status set makes the records before it moot). The link sends the pending records
to the user's timeline in their order, then a tombstone for the custom-field timeline (its compliance snapshot
is erased: the member now appears under the user), then the linking record. A later link to another user
takes effect for later records. Records of one member stay in order only as far as their raw records share a
partition (the same raw key), as everywhere in Switchyard.

**Timeline** (key: member). Entries are status ranges ``[startDate, endDate)`` (``endDate`` null = open).
Ranges may overlap: the seed's rules (codes 1000-1010) forbid none, and concurrent statuses are real (an open
"Membre" range and a later "Suspension du droit d'exercice").

- ``member_statuses`` replaces every entry;
- ``member_status_update`` sets the entry named ``entryId`` (adding it when unknown, so an update that
  overtakes the full set it belongs to is not lost);
- ``member_status_change`` closes the *active range* (the latest-starting range that starts before the new one
  and is open or ends after its start) at the new start, and adds the new range. Other ranges covering that
  instant stay as they are: the seed's change closes one range ("la plage active"), not every concurrent one.

Idempotency: every transition is computed as "the timeline after this value"; a value whose result equals
the stored state (a full set or update delivered again; a change whose range already exists exactly as asked)
changes nothing and emits nothing. A record whose event id is among the last :data:`APPLIED_KEPT` applied
changes nothing either: after a crash the feed replays a stretch *behind* later records, and a change replayed
over the change that closed its range would otherwise close it again and add its range a second time.
``revision`` counts changes of the entries, so the compliance table can ignore an older timeline arriving late.

**Active now** (:func:`active_now`) is decided from every range that covers the instant: the member is active
when at least one range covers it and none of those says inactive. The seed lists "suspension du droit
d'exercice" and "limitation du droit d'exercice" among the *active* statuses (when ``isActiveMember`` is not
given), so a membership with a concurrent suspension stays active; a suspension sent with
``isActiveMember: false`` is an explicit "inactive during this range" and makes the member inactive while it
lasts, whatever other range covers the instant.

**Cycle** (key: cycle id). Holds the cycle, its periods (by ``cyclePeriodId``, each replaced whole: the
records are list responses, not partial edits) and the members whose progress went through it. ``seq``
counts changes. A changed cycle or period is sent to every known member of the cycle; a member's progress is
forwarded with the cycle's periods attached (the join that puts period requirements under the member key).
A progress already seen (its event id is among the member's last :data:`PROGRESS_IDS_KEPT`) changes nothing,
so a replayed stretch of the feed cannot move a member back to older progress.

**Compliance** (key: member). Keeps the latest timeline (highest ``revision``) and per cycle the latest
message (highest ``seq``); older or equal messages change nothing. The snapshot on ``lara.compliance`` is
computed from that at the fold's ``now``: active now, current status, per cycle the current period, credits
and ``compliant`` (earned >= the requirement), and ``compliant`` overall. It is emitted only when the stored
state changed, so "active now" and "current period" are as of the member's last change.

A tombstone (``None``) erases the key's state; the timeline passes it on to the compliance feed, and the
compliance fold publishes a tombstone on ``lara.compliance``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from app.core.records import Emit, Folded
from app.domains.lara.enrich import credit_progress
from app.domains.lara.models import (
    CYCLE,
    MEMBER_STATUS_CHANGE,
    MEMBER_STATUS_UPDATE,
    MEMBER_STATUSES,
    PERIOD,
    USER_PROGRESS,
)

IDENTITY_TABLE = "identities"
IDENTITIES_FEED = "lara.identities.feed"
TIMELINE_TABLE = "status-timeline"
CYCLE_TABLE = "cycles"
COMPLIANCE_TABLE = "compliance"
STATUSES_FEED = "lara.statuses.feed"
CYCLES_FEED = "lara.cycles.feed"
COMPLIANCE_FEED = "lara.compliance.feed"
COMPLIANCE_TOPIC = "lara.compliance"

PROGRESS_IDS_KEPT = 4
PENDING_KEPT = 100
#: Event ids (16-character tags) of the member records a timeline applied last: far more than a crash can replay.
APPLIED_KEPT = 32

_ENTRY_FIELDS = ("entryId", "status", "isActiveMember", "activeFrom", "startDate", "endDate")
_CYCLE_FIELDS = ("name", "names", "adminName", "isActive", "isDeleted")
_PERIOD_FIELDS = (
    "cyclePeriodId",
    "adminName",
    "startDate",
    "endDate",
    "creditTarget",
    "isActive",
    "isDeleted",
)


# ---- ranges ------------------------------------------------------------------------------------------------


def _at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _start(entry: dict[str, Any]) -> datetime:
    start = _at(entry["startDate"])
    assert start is not None
    return start


def ordered(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries in time order (start, then entry id), reduced to the fields the timeline keeps."""
    kept = [{f: e.get(f) for f in _ENTRY_FIELDS} for e in entries]
    return sorted(kept, key=lambda e: (_start(e), e["entryId"] or ""))


def covering(entries: Sequence[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """Every range ``at`` falls in, in the entries' (time) order."""
    return [e for e in entries if _start(e) <= at and ((end := _at(e["endDate"])) is None or at < end)]


def active_now(entries: Sequence[dict[str, Any]], at: datetime) -> bool:
    """Some range covers ``at`` and none of those says inactive (rule in the module docstring)."""
    ranges = covering(entries, at)
    return bool(ranges) and all(e["isActiveMember"] for e in ranges)


# ---- identity ----------------------------------------------------------------------------------------------


def is_custom_field_key(member_key: str) -> bool:
    """A member key names a custom field (``api:value``); user ids (base64, maybe %-encoded) hold no ``:``."""
    return ":" in member_key


def _as_user(record: dict[str, Any], user: str) -> dict[str, Any]:
    return {**record, "memberKey": user, "userId": user}


def _pending_after(
    pending: list[dict[str, Any]], record: dict[str, Any]
) -> tuple[list[dict[str, Any]], bool]:
    """Pending records with ``record`` added: a full set drops what it replaces; (kept, truncated)."""
    if any(p["eventId"] == record["eventId"] for p in pending):
        return pending, False
    kept = [record] if record["type"] == MEMBER_STATUSES else [*pending, record]
    return kept[-PENDING_KEPT:], len(kept) > PENDING_KEPT


def fold_identity(state: Any, value: Any, now: datetime) -> Folded:
    """Link a custom field to its user, or forward a record of it (rules in the module docstring)."""
    if value is None:
        if state is None:
            return Folded(None, (), changed=False)
        return Folded(None, [Emit(STATUSES_FEED, state["customKey"], None)])
    custom, record, user = value["customKey"], value["record"], value["userId"]
    current: dict[str, Any] = state or {
        "customKey": custom,
        "userId": None,
        "pending": [],
        "truncated": False,
    }
    if user is None and current["userId"] is not None:
        return Folded(
            state,
            [Emit(STATUSES_FEED, current["userId"], _as_user(record, current["userId"]))],
            changed=False,
            outcome="forwarded",
        )
    if user is None:
        pending, truncated = _pending_after(current["pending"], record)
        new = {**current, "pending": pending, "truncated": current["truncated"] or truncated}
        return Folded(
            new, [Emit(STATUSES_FEED, custom, record)], changed=new != current, outcome="unresolved"
        )
    emits: list[Emit] = []
    if user != current["userId"] and current["pending"]:
        emits.extend(Emit(STATUSES_FEED, user, _as_user(p, user)) for p in current["pending"])
        emits.append(Emit(STATUSES_FEED, custom, None))
    emits.append(Emit(STATUSES_FEED, user, _as_user(record, user)))
    new = {**current, "userId": user, "pending": []}
    return Folded(new, emits, changed=new != current, outcome="linked" if new != current else "forwarded")


# ---- timeline ----------------------------------------------------------------------------------------------


def apply_status_record(entries: list[dict[str, Any]], value: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries after ``value`` (a member record as stage one enriched it)."""
    kind = value["type"]
    if kind == MEMBER_STATUSES:
        return ordered(value["statuses"])
    new = dict(value["status"])
    if kind == MEMBER_STATUS_UPDATE:
        new["entryId"] = value["entryId"]
        return ordered([*(e for e in entries if e["entryId"] != value["entryId"]), new])
    if kind == MEMBER_STATUS_CHANGE:
        (new,) = ordered([new])
        if new in entries:
            return entries
        start = _start(new)
        active = None
        for e in entries:
            end = _at(e["endDate"])
            if _start(e) < start and (end is None or end > start):
                active = e
        rest = [e for e in entries if e is not active]
        if active is not None:
            rest.append({**active, "endDate": new["startDate"]})
        return ordered([*rest, new])
    raise ValueError(f"{kind} is not a member status record")


def fold_timeline(state: Any, value: Any, now: datetime) -> Folded:
    """Fold one member status record into the member's timeline (rules in the module docstring)."""
    if value is None:
        if state is None:
            return Folded(None, (), changed=False)
        return Folded(None, [Emit(COMPLIANCE_FEED, state["memberKey"], None)])
    key = value["memberKey"]
    current: dict[str, Any] = state or {"memberKey": key, "revision": 0, "entries": []}
    applied: list[str] = current.get("applied", [])
    tag = value["eventId"][:16]
    if tag in applied:  # replayed after a crash, behind later records it must not be applied over
        return Folded(state, (), changed=False)
    result = apply_status_record(current["entries"], value)
    if state is not None and result == current["entries"]:
        return Folded(state, (), changed=False)
    new = {
        **{k: v for k, v in current.items() if k != "rejected"},  # overlaps were refused before; none is now
        "revision": current["revision"] + 1,
        "entries": result,
        "applied": [tag, *applied][:APPLIED_KEPT],
    }
    message = {"kind": "timeline", "memberKey": key, "revision": new["revision"], "entries": result}
    return Folded(new, [Emit(COMPLIANCE_FEED, key, message)])


# ---- cycle -------------------------------------------------------------------------------------------------


def _cycle_message(state: dict[str, Any], kind: str, member: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "memberKey": member,
        "cycleId": state["cycleId"],
        "seq": state["seq"],
        "cycle": state["cycle"],
        "periods": sorted(
            state["periods"].values(), key=lambda p: (p["startDate"] or "", p["cyclePeriodId"])
        ),
    }


def fold_cycle(state: Any, value: Any, now: datetime) -> Folded:
    """Fold a cycle, a period or a member's progress into the cycle (rules in the module docstring)."""
    if value is None:
        return Folded(None, (), changed=state is not None)
    cycle_id = value["cycleId"]
    current: dict[str, Any] = state or {
        "cycleId": cycle_id,
        "seq": 0,
        "cycle": None,
        "periods": {},
        "members": {},
    }
    kind = value["type"]
    if kind == USER_PROGRESS:
        member = value["memberId"]
        seen = current["members"].get(member, [])
        tag = value["eventId"][:16]
        if tag in seen:
            return Folded(state, (), changed=False)
        members = {**current["members"], member: [tag, *seen][:PROGRESS_IDS_KEPT]}
        new = {**current, "seq": current["seq"] + 1, "members": members}
        progress = {
            f: value[f] for f in ("requiredCredits", "completedCredits", "exemptedCredits", "providerCredits")
        }
        message = {**_cycle_message(new, "progress", member), "progress": progress}
        return Folded(new, [Emit(COMPLIANCE_FEED, member, message)])
    if kind == CYCLE:
        new = {**current, "cycle": {f: value[f] for f in _CYCLE_FIELDS}}
    elif kind == PERIOD:
        period = {f: value[f] for f in _PERIOD_FIELDS}
        new = {**current, "periods": {**current["periods"], value["cyclePeriodId"]: period}}
    else:
        raise ValueError(f"{kind} does not belong to a cycle")
    if state is not None and new == current:
        return Folded(state, (), changed=False)
    new["seq"] = current["seq"] + 1
    return Folded(
        new, [Emit(COMPLIANCE_FEED, m, _cycle_message(new, "cycle", m)) for m in sorted(new["members"])]
    )


# ---- compliance --------------------------------------------------------------------------------------------


def current_period(periods: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any] | None:
    """The live period ``now`` falls in (latest start wins); a period without a computable end is open."""
    found = None
    for p in periods:
        start, end = _at(p["startDate"]), _at(p["endDate"])
        if p["isDeleted"] is True or p["isActive"] is False or start is None:
            continue
        if start <= now and (end is None or now < end):
            found = p
    return found


def _cycle_view(cycle_id: str, held: dict[str, Any], now: datetime) -> dict[str, Any]:
    cycle = held["cycle"] or {}
    period = current_period(held["periods"], now)
    progress = held["progress"]
    required = progress["requiredCredits"] if progress else None
    source = "user_progress" if required is not None else None
    if required is None and period is not None and period["creditTarget"] is not None:
        required, source = period["creditTarget"], "period"
    credits = (
        credit_progress(required, progress["completedCredits"], progress["exemptedCredits"])
        if progress
        else None
    )
    return {
        "cycleId": cycle_id,
        "cycleName": cycle.get("name"),
        "cycleLive": cycle.get("isActive") is not False and cycle.get("isDeleted") is not True,
        "currentPeriod": period,
        "requiredCredits": required,
        "requirementSource": source,
        "completedCredits": progress["completedCredits"] if progress else None,
        "exemptedCredits": progress["exemptedCredits"] if progress else None,
        "earnedCredits": credits["earnedCredits"] if credits else None,
        "remainingCredits": credits["remainingCredits"] if credits else None,
        "progressPercent": credits["progressPercent"] if credits else None,
        "compliant": credits["meetsRequirement"] if credits else None,
    }


def compliance_view(state: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The snapshot on ``lara.compliance`` and what the query API serves.

    ``activeNow`` is None when no status is known, False between ranges, else :func:`active_now`.
    ``currentStatuses`` are the ranges covering now; ``currentStatus`` is the latest-starting of them. ``compliant``
    overall is None until some live cycle has a verdict, then True only when every live cycle with a verdict
    is met.
    """
    timeline = state["timeline"]
    statuses = covering(timeline["entries"], now) if timeline else []
    cycles = [_cycle_view(cid, held, now) for cid, held in sorted(state["cycles"].items())]
    verdicts = [c["compliant"] for c in cycles if c["cycleLive"] and c["compliant"] is not None]
    return {
        "memberKey": state["memberKey"],
        "identity": "unresolved" if is_custom_field_key(state["memberKey"]) else "user",
        "activeNow": active_now(timeline["entries"], now) if timeline else None,
        "currentStatus": statuses[-1] if statuses else None,
        "currentStatuses": statuses,
        "cycles": cycles,
        "compliant": all(verdicts) if verdicts else None,
    }


def fold_compliance(state: Any, value: Any, now: datetime) -> Folded:
    """Fold a timeline or cycle message into the member's compliance (rules in the module docstring)."""
    if value is None:
        if state is None:
            return Folded(None, (), changed=False)
        return Folded(None, [Emit(COMPLIANCE_TOPIC, state["memberKey"], None)])
    key = value["memberKey"]
    current: dict[str, Any] = state or {"memberKey": key, "timeline": None, "cycles": {}}
    if value["kind"] == "timeline":
        held = current["timeline"]
        if held is not None and held["revision"] >= value["revision"]:
            return Folded(state, (), changed=False)
        new = {**current, "timeline": {"revision": value["revision"], "entries": value["entries"]}}
    else:
        with_cycle = _with_cycle(current, value)
        if with_cycle is None:
            return Folded(state, (), changed=False)
        new = with_cycle
    return Folded(new, [Emit(COMPLIANCE_TOPIC, new["memberKey"], compliance_view(new, now))])


def _with_cycle(current: dict[str, Any], value: dict[str, Any]) -> dict[str, Any] | None:
    held = current["cycles"].get(value["cycleId"])
    if held is not None and held["seq"] >= value["seq"]:
        return None
    if held is None and value["kind"] != "progress":
        return None
    progress = value["progress"] if value["kind"] == "progress" else held["progress"] if held else None
    entry = {"seq": value["seq"], "cycle": value["cycle"], "periods": value["periods"], "progress": progress}
    return {**current, "cycles": {**current["cycles"], value["cycleId"]: entry}}
