"""Deterministic Phoenix traffic for integration tests and the benchmark, and the reference it must fold to.

Everything is driven by the ``random.Random`` passed in, so one seed is one exact stream. The stream has what
production has: several announcements of one appointment (DONE twice, CANCELED then DONE, PLANNED then DONE),
redeliveries of the same record, out-of-order and late delivery, events of other names and broken records,
each labelled with what stage one must do with it. :func:`reference_progress` and
:func:`reference_coach_activity` compute the expected table snapshots in one batch pass, independently of the
folds, so an integration test can compare the real tables against them.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

import orjson

from app.core.clock import iso
from app.core.traffic import (
    Document,
    Observed,
    Oracle,
    Outcome,
    Traffic,
    TrafficRecord,
    TrafficSource,
    Verdict,
    wrong_answers,
)
from app.domains.phoenix.models import SESSION_DONE, CancelationReason, CanceledBy
from app.domains.phoenix.rules import ENRICHED_TOPIC, UNHANDLED_TOPIC
from app.domains.phoenix.state import (
    COACH_RETENTION_WEEKS,
    UNSPECIFIED_REASON,
    iso_week_label,
    iso_week_start,
)
from app.domains.phoenix.views import COACH_WEEKS_PATH, TALENT_PROGRESS_PATH

ACCEPT = "accept"
UNHANDLED = "unhandled"

PHASES_PER_PROGRAM = 4
BLOCKS_PER_PHASE = 6
FIRST_EVENT_ID = 6_100_000
DEFAULT_START = datetime(2023, 3, 6, tzinfo=UTC)

CANCEL_REASONS: tuple[str, ...] = get_args(CancelationReason)
CANCELED_BY: tuple[str, ...] = get_args(CanceledBy)
OTHER_EVENT_NAMES = ("VCSessionPlannedEvent", "TalentBlockUnlockedEvent", "TalentPhaseCompletedEvent")

# appointment lifecycles: the statuses Phoenix announces, in order, with how often each happens
LIFECYCLES: tuple[tuple[tuple[str, ...], float], ...] = (
    (("DONE",), 0.62),
    (("DONE", "DONE"), 0.10),
    (("CANCELED",), 0.15),
    (("CANCELED", "DONE"), 0.06),
    (("PLANNED", "DONE"), 0.05),
    (("PLANNED",), 0.02),
)


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One raw record and what stage one must do with it: ``accept``, ``unhandled``, or an error code."""

    value: bytes
    key: bytes | None
    expect: str
    label: str
    redelivery: bool = False


@dataclass(frozen=True, slots=True)
class Program:
    program_id: str
    phase_ids: tuple[str, ...]
    block_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Talent:
    talent_id: str
    coach_id: str
    program: Program
    talent_phase_ids: tuple[str, ...]
    talent_block_ids: tuple[str, ...]


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _ms(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def make_program(rng: random.Random) -> Program:
    phases = tuple(new_id(rng) for _ in range(PHASES_PER_PROGRAM))
    blocks = tuple(new_id(rng) for _ in range(PHASES_PER_PROGRAM * BLOCKS_PER_PHASE))
    return Program(new_id(rng), phases, blocks)


def make_talent(rng: random.Random, coach_id: str, program: Program) -> Talent:
    return Talent(
        talent_id=new_id(rng),
        coach_id=coach_id,
        program=program,
        talent_phase_ids=tuple(new_id(rng) for _ in program.phase_ids),
        talent_block_ids=tuple(new_id(rng) for _ in program.block_ids),
    )


def _talent_block(rng: random.Random, talent: Talent, order: int, created: datetime) -> dict[str, Any]:
    phase = order // BLOCKS_PER_PHASE
    program = talent.program
    stamp = _ms(created)
    talent_phase = {
        "id": talent.talent_phase_ids[phase],
        "order": phase,
        "status": "IN_PROGRESS",
        "phaseId": program.phase_ids[phase],
        "parentId": program.program_id,
        "talentId": talent.talent_id,
        "createdAt": stamp,
        "deletedAt": None,
        "programId": program.program_id,
        "updatedAt": stamp,
        "childrenIds": [],
        "talentBlockIds": list(
            talent.talent_block_ids[phase * BLOCKS_PER_PHASE : (phase + 1) * BLOCKS_PER_PHASE]
        ),
    }
    title = f"Séance de suivi {order + 1}"
    block: dict[str, Any] = {
        "id": program.block_ids[order],
        "tags": [],
        "type": "VC",
        "title": title,
        "tagIds": [],
        "createdAt": stamp,
        "deletedAt": None,
        "updatedAt": stamp,
        "criteriaIds": [],
        "description": "",
        "coachSubject": "Faites le point avec votre talent sur son plan d'action.",
        "internalTitle": title,
        "talentSubject": "Partagez vos dernières avancées avec votre coach.",
        "blockToActivities": [],
    }
    return {
        "id": talent.talent_block_ids[order],
        "block": block,
        "order": order,
        "status": rng.choice(("LOCKED", "UNLOCKED", "DONE")),
        "blockId": program.block_ids[order],
        "talentId": talent.talent_id,
        "createdAt": stamp,
        "deletedAt": None,
        "programId": program.program_id,
        "updatedAt": stamp,
        "talentPhase": talent_phase,
        "talentPhaseId": talent.talent_phase_ids[phase],
        "talentActivityIds": [],
    }


@dataclass(frozen=True, slots=True)
class _Appointment:
    appointment_id: str
    key_id: str
    talent: Talent
    order: int
    created: datetime
    start: datetime
    end: datetime
    appointment_type: str


def session_event(
    rng: random.Random,
    appt: _Appointment,
    *,
    event_id: int,
    status: str,
    updated: datetime,
) -> dict[str, Any]:
    """One bus envelope announcing ``appt`` in ``status``, shaped like the seed's production example."""
    talent = appt.talent
    block = _talent_block(rng, talent, appt.order, appt.created - timedelta(days=60))
    canceled = status == "CANCELED"
    published = updated + timedelta(milliseconds=rng.randrange(5, 400))
    title = block["block"]["title"]
    appointment = {
        "id": appt.appointment_id,
        "title": title,
        "status": status,
        "coachId": talent.coach_id,
        "endDate": _ms(appt.end),
        "talentId": talent.talent_id,
        "createdAt": _ms(appt.created),
        "deletedAt": None,
        "startDate": _ms(appt.start),
        "updatedAt": _ms(updated),
        "canceledBy": rng.choice(CANCELED_BY) if canceled else None,
        "subphaseId": block["talentPhase"]["phaseId"],
        "description": title,
        "talentBlock": block,
        "talentBlockId": block["id"],
        "appointmentType": appt.appointment_type,
        "updateDetailsIds": [new_id(rng)],
        "cancelationReason": rng.choice(CANCEL_REASONS) if canceled else None,
        "cancelationExplanation": "Indisponible ce jour-là." if canceled else None,
    }
    return {
        "id": event_id,
        "createdAt": _ms(published),
        "updatedAt": _ms(published + timedelta(milliseconds=22)),
        "eventName": SESSION_DONE,
        "keyId": appt.key_id,
        "eventData": {
            "name": SESSION_DONE,
            "type": "event",
            "keyId": appt.key_id,
            "version": 1,
            "appointment": appointment,
        },
        "status": "ACKNOWLEDGED",
        "publisherNodeId": "phoenix-production-788774c7f-v2hp2",
        "processorNodeId": "phoenix-production-788774c7f-ptzwj",
        "version": 1,
        "userId": None,
        "talentId": talent.talent_id,
    }


def unhandled_event(rng: random.Random, event_id: int, at: datetime) -> dict[str, Any]:
    """A bus event of another name: Switchyard must pass it on untouched."""
    name = rng.choice(OTHER_EVENT_NAMES)
    key_id = new_id(rng)
    return {
        "id": event_id,
        "createdAt": _ms(at),
        "updatedAt": _ms(at),
        "eventName": name,
        "keyId": key_id,
        "eventData": {"name": name, "type": "event", "keyId": key_id, "version": 1},
        "status": "ACKNOWLEDGED",
        "publisherNodeId": "phoenix-production-788774c7f-v2hp2",
        "processorNodeId": None,
        "version": 1,
        "userId": None,
        "talentId": new_id(rng),
    }


def valid_session(rng: random.Random, event_id: int = FIRST_EVENT_ID, status: str = "DONE") -> dict[str, Any]:
    """One realistic accepted session event for a fresh talent, coach and program."""
    talent = make_talent(rng, new_id(rng), make_program(rng))
    start = DEFAULT_START + timedelta(days=rng.randrange(120), hours=rng.randrange(8, 18), milliseconds=403)
    appt = _Appointment(
        appointment_id=new_id(rng),
        key_id=new_id(rng),
        talent=talent,
        order=rng.randrange(len(talent.talent_block_ids)),
        created=start - timedelta(days=rng.randrange(1, 14)),
        start=start,
        end=start + timedelta(minutes=30, milliseconds=-306),
        appointment_type="STANDALONE",
    )
    updated = (
        appt.end + timedelta(hours=rng.randrange(1, 48))
        if status != "CANCELED"
        else start - timedelta(hours=3)
    )
    return session_event(rng, appt, event_id=event_id, status=status, updated=updated)


def _appointment(doc: dict[str, Any]) -> dict[str, Any]:
    appointment: dict[str, Any] = doc["eventData"]["appointment"]
    return appointment


def invalid_variants(rng: random.Random, doc: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """Broken versions of the valid ``doc``: (label, raw bytes, the error code stage one must report)."""

    def edited(edit: Any) -> bytes:
        out = copy.deepcopy(doc)
        edit(out)
        return orjson.dumps(out)

    def set_appt(field: str, value: Any) -> Any:
        return lambda d: _appointment(d).__setitem__(field, value)

    def drop_appt(field: str) -> Any:
        return lambda d: _appointment(d).pop(field)

    def end_before_start(d: dict[str, Any]) -> None:
        a = _appointment(d)
        a["startDate"], a["endDate"] = a["endDate"], a["startDate"]

    return [
        ("empty", b"", "DECODE-EMPTY"),
        ("truncated-json", orjson.dumps(doc)[: rng.randrange(10, 60)], "DECODE-JSON"),
        ("not-utf8", b"\xff\xfe" + orjson.dumps(doc), "DECODE-UTF8"),
        ("not-object", orjson.dumps([doc]), "DECODE-NOT-OBJECT"),
        ("no-event-name", edited(lambda d: d.pop("eventName")), "SCHEMA-REQUIRED"),
        ("string-event-id", edited(lambda d: d.__setitem__("id", str(d["id"]))), "SCHEMA-TYPE"),
        ("no-appointment", edited(lambda d: d["eventData"].pop("appointment")), "SCHEMA-REQUIRED"),
        ("payload-version-2", edited(lambda d: d["eventData"].__setitem__("version", 2)), "SCHEMA-ENUM"),
        ("bad-status", edited(set_appt("status", "FINISHED")), "SCHEMA-ENUM"),
        ("bad-cancel-reason", edited(set_appt("cancelationReason", "TALENT_BORED")), "SCHEMA-ENUM"),
        ("bad-canceled-by", edited(set_appt("canceledBy", "ROBOT")), "SCHEMA-ENUM"),
        ("bad-appointment-type", edited(set_appt("appointmentType", "PART_THREE")), "SCHEMA-ENUM"),
        ("no-coach-id", edited(drop_appt("coachId")), "SCHEMA-REQUIRED"),
        ("no-talent-id", edited(drop_appt("talentId")), "SCHEMA-REQUIRED"),
        ("no-update-details-ids", edited(drop_appt("updateDetailsIds")), "SCHEMA-REQUIRED"),
        ("local-start-date", edited(set_appt("startDate", "07/07/2023 15:00")), "SCHEMA-FORMAT"),
        ("epoch-created-at", edited(set_appt("createdAt", 1688734800)), "SCHEMA-TYPE"),
        ("end-before-start", edited(end_before_start), "ENRICH-NEGATIVE-DURATION"),
    ]


def _pick_lifecycle(rng: random.Random) -> tuple[str, ...]:
    statuses, weights = zip(*LIFECYCLES, strict=True)
    chosen: tuple[str, ...] = rng.choices(statuses, weights=weights)[0]
    return chosen


def session_stream(
    rng: random.Random,
    *,
    sessions: int = 3000,
    talents: int = 200,
    coaches: int = 20,
    programs: int = 5,
    start: datetime = DEFAULT_START,
    weeks: int = 26,
    redelivery_rate: float = 0.05,
    late_rate: float = 0.02,
    reorder_window: int = 16,
    invalid_rate: float = 0.03,
    unhandled_rate: float = 0.02,
) -> list[GeneratedRecord]:
    """``sessions`` appointments over ``talents`` talents and ``coaches`` coaches across ``weeks`` weeks, as
    the raw topic would receive them (see the module docstring for what the stream contains)."""
    coach_ids = [new_id(rng) for _ in range(coaches)]
    program_list = [make_program(rng) for _ in range(programs)]
    people = [make_talent(rng, coach_ids[i % coaches], rng.choice(program_list)) for i in range(talents)]
    per_talent = Counter(rng.randrange(talents) for _ in range(sessions))
    span_hours = weeks * 7 * 24
    versions: list[tuple[datetime, _Appointment, str]] = []
    for index, talent in enumerate(people):
        slots = sorted(rng.randrange(span_hours - 48) for _ in range(per_talent[index]))
        for order, hour in enumerate(slots):
            begin = start + timedelta(
                hours=hour, minutes=rng.choice((0, 15, 30)), milliseconds=rng.randrange(1000)
            )
            minutes = rng.choice((30, 45, 60))
            appt = _Appointment(
                appointment_id=new_id(rng),
                key_id=new_id(rng),
                talent=talent,
                order=order % len(talent.talent_block_ids),
                created=begin - timedelta(days=rng.randrange(1, 21)),
                start=begin,
                end=begin + timedelta(minutes=minutes, milliseconds=rng.randrange(-900, 900)),
                appointment_type=rng.choice(("STANDALONE",) * 8 + ("PART_ONE", "PART_TWO")),
            )
            for step, status in enumerate(_pick_lifecycle(rng)):
                if status == "DONE":
                    updated = appt.end + timedelta(hours=1 + step, minutes=rng.randrange(600))
                elif status == "CANCELED":
                    updated = appt.start - timedelta(hours=rng.randrange(2, 72))
                else:
                    updated = appt.created + timedelta(seconds=step)
                versions.append((updated, appt, status))
    versions.sort(key=lambda v: (v[0], v[1].appointment_id))
    records: list[GeneratedRecord] = []
    for event_id, (updated, appt, status) in enumerate(versions, start=FIRST_EVENT_ID):
        doc = session_event(rng, appt, event_id=event_id, status=status, updated=updated)
        records.append(
            GeneratedRecord(orjson.dumps(doc), appt.key_id.encode(), ACCEPT, f"session-{status.lower()}")
        )
    _reorder(rng, records, reorder_window, late_rate)
    next_id = FIRST_EVENT_ID + len(versions)
    extra = int(len(records) * unhandled_rate)
    for _ in range(extra):
        doc = unhandled_event(rng, next_id, start + timedelta(hours=rng.randrange(span_hours)))
        next_id += 1
        records.insert(rng.randrange(len(records) + 1), _record(doc, UNHANDLED, "unhandled"))
    valid = [r.value for r in records if r.expect == ACCEPT]
    for _ in range(int(len(records) * invalid_rate)):
        source = orjson.loads(rng.choice(valid))
        source["id"] = next_id
        next_id += 1
        label, value, code = rng.choice(invalid_variants(rng, source))
        records.insert(rng.randrange(len(records) + 1), GeneratedRecord(value, None, code, label))
    for _ in range(int(len(records) * redelivery_rate)):
        i = rng.randrange(len(records))
        again = records[i]
        copy_ = GeneratedRecord(again.value, again.key, again.expect, again.label, redelivery=True)
        records.insert(rng.randrange(i + 1, len(records) + 1), copy_)
    return records


def _record(doc: dict[str, Any], expect: str, label: str) -> GeneratedRecord:
    key = doc.get("keyId") or doc.get("talentId")
    return GeneratedRecord(orjson.dumps(doc), key.encode() if isinstance(key, str) else None, expect, label)


def _reorder(rng: random.Random, records: list[GeneratedRecord], window: int, late_rate: float) -> None:
    for i in range(len(records) - 1):
        j = min(len(records) - 1, i + rng.randrange(window))
        records[i], records[j] = records[j], records[i]
    for _ in range(int(len(records) * late_rate)):
        i = rng.randrange(len(records))
        records.insert(rng.randrange(i, len(records)), records.pop(i))


# ---- the reference: batch, from the raw bytes, independent of the folds ------------------------------------


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _latest_versions(records: Iterable[GeneratedRecord]) -> list[dict[str, Any]]:
    """Per appointment, its latest accepted version (``updatedAt`` or ``createdAt``, then the bus id) with the
    bus id attached; redeliveries and order change nothing."""
    latest: dict[str, tuple[tuple[datetime, int], dict[str, Any]]] = {}
    for record in records:
        if record.expect != ACCEPT:
            continue
        doc = orjson.loads(record.value)
        appt = _appointment(doc)
        stamp = _when(appt.get("updatedAt") or appt["createdAt"])
        assert stamp is not None
        rank = (stamp, doc["id"])
        held = latest.get(appt["id"])
        if held is None or rank > held[0]:
            latest[appt["id"]] = (rank, appt)
    return [appt for _, appt in latest.values()]


def reference_progress(records: Iterable[GeneratedRecord]) -> dict[str, dict[str, Any]]:
    """The talent-progress snapshot every talent must end with (``talent_progress_view`` of the table)."""
    by_talent: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for appt in _latest_versions(records):
        if appt.get("deletedAt") is None:
            by_talent[appt["talentId"]].append(appt)
    out: dict[str, dict[str, Any]] = {}
    for talent_id, appts in by_talent.items():
        done = [a for a in appts if a["status"] == "DONE"]
        done.sort(key=lambda a: (_when(a["startDate"] or a["endDate"]), a["updatedAt"]))
        reasons = Counter(
            a["cancelationReason"] or UNSPECIFIED_REASON for a in appts if a["status"] == "CANCELED"
        )
        millis = 0
        for a in done:
            start, end = _when(a["startDate"]), _when(a["endDate"])
            if start and end:
                millis += (end - start) // timedelta(milliseconds=1)
        dated = [_when(a["startDate"] or a["endDate"]) for a in done]
        stamps = [iso(d) for d in dated if d is not None]
        programs: dict[str, dict[str, Any]] = {}
        for a in done:
            block = a["talentBlock"]
            program = programs.setdefault(
                block["programId"], {"sessionsDone": 0, "blocksDone": {}, "currentPhase": None}
            )
            program["sessionsDone"] += 1
            at = iso(_when(a["startDate"]) or datetime.min)
            entry = program["blocksDone"].setdefault(
                block["id"],
                {
                    "talentBlockId": block["id"],
                    "blockId": block["blockId"],
                    "order": block["order"],
                    "sessions": 0,
                },
            )
            entry["sessions"] += 1
            entry["lastSessionAt"] = at
            phase = block["talentPhase"]
            program["currentPhase"] = {
                "talentPhaseId": phase["id"],
                "phaseId": phase["phaseId"],
                "order": phase["order"],
            }
        for program in programs.values():
            program["blocksDone"] = sorted(
                program["blocksDone"].values(), key=lambda b: (b["order"], b["talentBlockId"])
            )
        out[talent_id] = {
            "talentId": talent_id,
            "sessionsDone": len(done),
            "sessionsCanceled": sum(reasons.values()),
            "sessionsPlanned": sum(1 for a in appts if a["status"] == "PLANNED"),
            "canceledByReason": dict(sorted(reasons.items())),
            "minutesInSession": round(millis / 60000, 2),
            "firstSessionAt": stamps[0] if stamps else None,
            "lastSessionAt": stamps[-1] if stamps else None,
            "programs": dict(sorted(programs.items())),
        }
    return out


def reference_coach_activity(
    records: Iterable[GeneratedRecord], retention_weeks: int = COACH_RETENTION_WEEKS
) -> dict[str, dict[str, Any]]:
    """The coach-activity snapshot every coach must end with: done sessions per ISO week over the
    ``retention_weeks`` weeks up to the coach's latest session week (``coach_activity_view`` of the table)."""
    records = list(records)
    latest_week: dict[str, str] = {}
    for record in records:
        if record.expect == ACCEPT:
            appt = _appointment(orjson.loads(record.value))
            week = iso_week_start(datetime.fromisoformat(appt["startDate"])).isoformat()
            latest_week[appt["coachId"]] = max(week, latest_week.get(appt["coachId"], week))
    per_week: dict[str, Counter[str]] = defaultdict(Counter)
    for appt in _latest_versions(records):
        coach = appt["coachId"]
        week = iso_week_start(datetime.fromisoformat(appt["startDate"])).isoformat()
        horizon = datetime.fromisoformat(latest_week[coach]) - timedelta(weeks=retention_weeks - 1)
        if appt["status"] == "DONE" and appt.get("deletedAt") is None and week >= horizon.date().isoformat():
            per_week[coach][week] += 1
    out: dict[str, dict[str, Any]] = {}
    for coach, latest in latest_week.items():
        weeks = sorted(per_week[coach].items())
        out[coach] = {
            "coachId": coach,
            "retentionWeeks": retention_weeks,
            "latestWeek": iso_week_label(datetime.fromisoformat(latest).date()),
            "latestWeekStart": latest,
            "sessionsDone": sum(n for _, n in weeks),
            "weeks": [
                {"week": iso_week_label(datetime.fromisoformat(w).date()), "weekStart": w, "sessionsDone": n}
                for w, n in weeks
            ],
        }
    return out


# ---- the traffic protocol (app.core.traffic) -------------------------------------------------------------------
def as_traffic(record: GeneratedRecord) -> TrafficRecord:
    if record.expect in (ACCEPT, UNHANDLED):
        outcome: Outcome = "accepted" if record.expect == ACCEPT else "passed"
        return TrafficRecord(record.value, record.key, (), outcome, None, record.label)
    return TrafficRecord.rejected(record.value, record.key, record.expect, label=record.label)


def _oracle(records: list[GeneratedRecord]) -> Oracle:
    def judge(_: Sequence[TrafficRecord], seen: Observed, verdict: Verdict) -> None:
        accepted = Counter(
            {orjson.loads(v)["id"]: 1 for v in {r.value for r in records if r.expect == ACCEPT}}
        )
        verdict.expected = sum(accepted.values())
        enriched = Counter(orjson.loads(r.value or b"")["eventId"] for r in seen.read(ENRICHED_TOPIC))
        verdict.processed = len(enriched)
        verdict.compare(ENRICHED_TOPIC, accepted, enriched)
        unhandled = Counter(set((r.key, r.value) for r in records if r.expect == UNHANDLED))
        verdict.compare(
            UNHANDLED_TOPIC, unhandled, Counter((r.key, r.value) for r in seen.read(UNHANDLED_TOPIC))
        )
        answers = [
            (TALENT_PROGRESS_PATH.format(talentId=t), v) for t, v in reference_progress(records).items()
        ]
        answers += [
            (COACH_WEEKS_PATH.format(coachId=c), v) for c, v in reference_coach_activity(records).items()
        ]
        verdict.wrong("phoenix tables", wrong_answers(seen, answers))

    return judge


def _traffic(rng: random.Random, n: int, now: datetime) -> Traffic:
    # the stream adds redeliveries, broken and foreign events on top of the sessions: ask for a little less
    records = session_stream(
        rng, sessions=max(10, int(n * 0.8)), talents=max(5, n // 15), coaches=max(2, n // 150)
    )
    return Traffic([as_traffic(r) for r in records], _oracle(records))


def _documents(rng: random.Random) -> list[Document]:
    made: list[Document] = [(None, valid_session(rng, FIRST_EVENT_ID + i)) for i in range(6)]
    return [
        *made,
        (None, unhandled_event(rng, FIRST_EVENT_ID + 100_000, datetime(2025, 6, 1, 12, tzinfo=UTC))),
    ]


TRAFFIC = TrafficSource(
    _traffic,
    _documents,
    "Phoenix bus envelopes (~4 KB), stage one + talent-progress and coach-activity folds",
    (ENRICHED_TOPIC,),
    bench_records=(1200, 5000),
)
