"""Phoenix's two tables as pure folds: talent progress (key talentId) and coach activity (key coachId).

Both folds read the enriched session record (:class:`~app.domains.phoenix.models.EnrichedSession`) and keep,
per appointment, only its **latest version**, ordered by ``(updatedAt or createdAt, bus eventId)``. A delivery
replaces the stored version only when its version is strictly greater; every count is then derived from that
per-appointment map, never incremented. Hence:

- a value delivered twice changes nothing the second time (equal version: no change, no emit);
- an appointment counts once however often it is announced: DONE twice is one session, CANCELED then DONE is
  one done session (and no longer a cancelation), DONE then a later CANCELED is one cancelation;
- delivery order does not matter: the latest version wins whichever arrives first, so a replayed or reordered
  stream folds to the same state;
- an appointment whose latest version carries ``deletedAt`` is kept (so an older version cannot resurrect it)
  but counted nowhere.

A fold emits a snapshot only when the state changed; ``value=None`` (erasure) deletes the key and emits a
tombstone for it. ``now`` is unused: table state depends on event content only, so a replay reproduces it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from app.core.clock import iso
from app.core.records import Emit, Folded
from app.core.validation import validate
from app.domains.phoenix.models import EnrichedSession

TALENT_PROGRESS_TABLE = "talent-progress"
COACH_ACTIVITY_TABLE = "coach-activity"
TALENT_PROGRESS_TOPIC = "phoenix.talent-progress"
COACH_ACTIVITY_TOPIC = "phoenix.coach-activity"

#: Weeks of coach activity kept in the state: the latest ISO week seen for the coach and the N-1 before it.
COACH_RETENTION_WEEKS = 12

UNSPECIFIED_REASON = "UNSPECIFIED"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Fold = Callable[[Any, Any, datetime], Folded]


def version_of(session: EnrichedSession) -> list[int]:
    """The order of an appointment's versions: Phoenix's ``updatedAt`` (``createdAt`` if never updated), then
    the bus event id, which is increasing on the bus and breaks ties between equal timestamps."""
    stamp = session.updatedAt or session.createdAt
    return [(stamp - _EPOCH) // timedelta(microseconds=1), session.eventId]


def session_time(session: EnrichedSession) -> datetime | None:
    """When the session took place: its start, else its end."""
    return session.startDate or session.endDate


def iso_week_start(at: datetime) -> date:
    """Monday of ``at``'s ISO week, in UTC.

    Faust's tumbling windows are aligned to the Unix epoch, a Thursday, so a 7-day Faust window is not an ISO
    week; weeks are therefore folded explicitly from the session time.
    """
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def iso_week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _newer(stored: dict[str, Any] | None, version: list[int]) -> bool:
    return stored is None or tuple(version) > tuple(stored["version"])


def _erase(state: Any, key_field: str, topic: str) -> Folded:
    if state is None:
        return Folded(None, (), changed=False)
    return Folded(None, [Emit(topic, state[key_field], None)])


def _view(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "appointments"}


# ---- talent progress ---------------------------------------------------------------------------------------


def _talent_entry(session: EnrichedSession) -> dict[str, Any]:
    at = session_time(session)
    return {
        "version": version_of(session),
        "status": session.status,
        "deleted": session.deletedAt is not None,
        "at": iso(at) if at is not None else None,
        "durationMs": None if session.sessionSeconds is None else round(session.sessionSeconds * 1000),
        "programId": session.programId,
        "talentPhaseId": session.talentPhaseId,
        "phaseId": session.phaseId,
        "phaseOrder": session.phaseOrder,
        "talentBlockId": session.talentBlockId,
        "blockId": session.blockId,
        "blockOrder": session.blockOrder,
        "cancelationReason": session.cancelationReason,
    }


def _chronological(entry: dict[str, Any]) -> tuple[datetime, tuple[int, ...]]:
    at = datetime.fromisoformat(entry["at"]) if entry["at"] else _EPOCH
    return at, tuple(entry["version"])


def _program_progress(done: list[dict[str, Any]]) -> dict[str, Any]:
    """Blocks done (with their order) and the current phase, from one program's done sessions in time order.

    A block can take two sessions (PART_ONE/PART_TWO); it is listed once, with how many sessions it took. The
    current phase is the phase of the program's most recent done session.
    """
    blocks: dict[str, dict[str, Any]] = {}
    phase: dict[str, Any] | None = None
    for e in done:
        block_key = e["talentBlockId"] or e["blockId"]
        if block_key is not None:
            block = blocks.setdefault(
                block_key,
                {
                    "talentBlockId": e["talentBlockId"],
                    "blockId": e["blockId"],
                    "order": e["blockOrder"],
                    "sessions": 0,
                },
            )
            block["sessions"] += 1
            block["lastSessionAt"] = e["at"]
        if e["talentPhaseId"] or e["phaseId"]:
            phase = {"talentPhaseId": e["talentPhaseId"], "phaseId": e["phaseId"], "order": e["phaseOrder"]}
    ordered = sorted(
        blocks.values(), key=lambda b: (b["order"] is None, b["order"] or 0, b["talentBlockId"] or "")
    )
    return {"sessionsDone": len(done), "blocksDone": ordered, "currentPhase": phase}


def summarise_talent(talent_id: str, appointments: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The talent-progress state for ``appointments`` (appointment id -> latest version entry)."""
    live = [e for e in appointments.values() if not e["deleted"]]
    done = sorted((e for e in live if e["status"] == "DONE"), key=_chronological)
    canceled = Counter(
        e["cancelationReason"] or UNSPECIFIED_REASON for e in live if e["status"] == "CANCELED"
    )
    by_program: dict[str, list[dict[str, Any]]] = {}
    for e in done:
        if e["programId"] is not None:
            by_program.setdefault(e["programId"], []).append(e)
    dated = [e["at"] for e in done if e["at"] is not None]
    return {
        "talentId": talent_id,
        "sessionsDone": len(done),
        "sessionsCanceled": sum(canceled.values()),
        "sessionsPlanned": sum(1 for e in live if e["status"] == "PLANNED"),
        "canceledByReason": dict(sorted(canceled.items())),
        "minutesInSession": round(sum(e["durationMs"] or 0 for e in done) / 60000, 2),
        "firstSessionAt": dated[0] if dated else None,
        "lastSessionAt": dated[-1] if dated else None,
        "programs": {pid: _program_progress(sessions) for pid, sessions in sorted(by_program.items())},
        "appointments": appointments,
    }


def talent_progress_view(state: dict[str, Any]) -> dict[str, Any]:
    """The snapshot published on ``phoenix.talent-progress`` and served by the query API: the state without
    its per-appointment bookkeeping."""
    return _view(state)


def fold_talent_progress(state: Any, value: Any, now: datetime) -> Folded:
    """Fold one enriched session into its talent's progress (rules in the module docstring)."""
    if value is None:
        return _erase(state, "talentId", TALENT_PROGRESS_TOPIC)
    session = validate(EnrichedSession, value)
    appointments: dict[str, dict[str, Any]] = dict(state["appointments"]) if state else {}
    entry = _talent_entry(session)
    if not _newer(appointments.get(session.appointmentId), entry["version"]):
        return Folded(state, (), changed=False)
    appointments[session.appointmentId] = entry
    new = summarise_talent(session.talentId, appointments)
    return Folded(new, [Emit(TALENT_PROGRESS_TOPIC, session.talentId, talent_progress_view(new))])


# ---- coach activity ----------------------------------------------------------------------------------------


def summarise_coach(
    coach_id: str, retention_weeks: int, latest: str | None, appointments: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The coach-activity state: done sessions per ISO week, oldest week first."""
    per_week = Counter(
        e["weekStart"]
        for e in appointments.values()
        if e["status"] == "DONE" and not e["deleted"] and e["weekStart"] is not None
    )
    weeks = [
        {"week": iso_week_label(date.fromisoformat(start)), "weekStart": start, "sessionsDone": n}
        for start, n in sorted(per_week.items())
    ]
    return {
        "coachId": coach_id,
        "retentionWeeks": retention_weeks,
        "latestWeek": iso_week_label(date.fromisoformat(latest)) if latest else None,
        "latestWeekStart": latest,
        "sessionsDone": sum(per_week.values()),
        "weeks": weeks,
        "appointments": appointments,
    }


def coach_activity_view(state: dict[str, Any]) -> dict[str, Any]:
    """The snapshot published on ``phoenix.coach-activity``."""
    return _view(state)


def make_coach_fold(retention_weeks: int = COACH_RETENTION_WEEKS) -> Fold:
    """The coach-activity fold keeping ``retention_weeks`` ISO weeks.

    Retention is measured from the latest session week seen for the coach (a high-water mark that only moves
    forward), not from the wall clock, so the state depends on the events alone. Per delivery:

    1. ``latestWeekStart`` := max(itself, the session's week);
    2. a version of a week before the retained range is ignored, otherwise it replaces the stored version of
       its appointment when newer (module docstring);
    3. appointments of weeks that fell out of the range are forgotten, bounding the state.

    Caveat of forgetting: an appointment rescheduled by more than the retention span between two of its
    versions may count in a week another delivery order would have dropped; Phoenix sessions keep their slot.
    """
    if retention_weeks < 1:
        raise ValueError("retention_weeks must be at least 1")
    span = timedelta(weeks=retention_weeks - 1)

    def fold_coach_activity(state: Any, value: Any, now: datetime) -> Folded:
        if value is None:
            return _erase(state, "coachId", COACH_ACTIVITY_TOPIC)
        session = validate(EnrichedSession, value)
        at = session_time(session)
        week = iso_week_start(at).isoformat() if at is not None else None
        latest: str | None = state["latestWeekStart"] if state else None
        if week is not None and (latest is None or week > latest):
            latest = week
        horizon = (date.fromisoformat(latest) - span).isoformat() if latest else None
        appointments: dict[str, dict[str, Any]] = dict(state["appointments"]) if state else {}
        version = version_of(session)
        in_range = week is None or horizon is None or week >= horizon
        if in_range and _newer(appointments.get(session.appointmentId), version):
            appointments[session.appointmentId] = {
                "version": version,
                "status": session.status,
                "deleted": session.deletedAt is not None,
                "weekStart": week,
            }
        if horizon is not None:
            appointments = {
                k: e for k, e in appointments.items() if e["weekStart"] is None or e["weekStart"] >= horizon
            }
        new = summarise_coach(session.coachId, retention_weeks, latest, appointments)
        if new == state:
            return Folded(state, (), changed=False)
        return Folded(new, [Emit(COACH_ACTIVITY_TOPIC, session.coachId, coach_activity_view(new))])

    return fold_coach_activity


fold_coach_activity: Fold = make_coach_fold()
