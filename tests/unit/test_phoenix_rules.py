"""Phoenix's pure side: process, route, enrichment, the two folds and the generators, with a fixed ``now``."""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from app.core.errors import RecordError
from app.core.records import EVENT_TYPE_HEADER, Emit, RawRecord, content_event_id
from app.domains.phoenix.generate import (
    ACCEPT,
    UNHANDLED,
    GeneratedRecord,
    invalid_variants,
    reference_coach_activity,
    reference_progress,
    session_stream,
    valid_session,
)
from app.domains.phoenix.rules import (
    BY_COACH_TOPIC,
    ENRICHED_TOPIC,
    RULES,
    UNHANDLED_TOPIC,
    key_of,
    process,
    route,
)
from app.domains.phoenix.state import (
    COACH_ACTIVITY_TOPIC,
    TALENT_PROGRESS_TOPIC,
    coach_activity_view,
    fold_coach_activity,
    fold_talent_progress,
    iso_week_label,
    iso_week_start,
    make_coach_fold,
    talent_progress_view,
)

NOW = datetime(2023, 7, 10, 12, 0, tzinfo=UTC)
TALENT = "3dae4f47-7ed7-493c-b71c-2799afc51343"
COACH = "c23307dd-9c28-482f-957a-a978b7765b9c"
APPOINTMENT = "42467d30-b635-4bee-bf33-5d4986a2973f"


def sample() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(RULES.samples()[0].value)
    return doc


def appt(doc: dict[str, Any]) -> dict[str, Any]:
    a: dict[str, Any] = doc["eventData"]["appointment"]
    return a


def run(doc: dict[str, Any] | bytes, key: bytes | None = b"k", headers: Any = ()) -> Any:
    value = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return process(RawRecord(value=value, key=key, headers=headers, topic="phoenix.raw"), NOW)


def enriched(doc: dict[str, Any]) -> dict[str, Any]:
    """The enriched value as the folds receive it: through JSON, as on the topic."""
    value: dict[str, Any] = orjson.loads(orjson.dumps(run(doc).enriched))
    return value


def version(doc: dict[str, Any], event_id: int, status: str, updated: str, **fields: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["id"] = event_id
    appt(out).update(status=status, updatedAt=updated, **fields)
    return out


# ---- process and enrichment --------------------------------------------------------------------------------


def test_seed_sample_is_processed_with_the_envelope_id_type_and_talent_key() -> None:
    p = run(sample())
    assert (p.event_id, p.event_type, p.key) == ("6101609", "VCSessionDoneEvent", TALENT)
    assert p.event_time == datetime(2023, 7, 9, 17, 15, 26, 696000, tzinfo=UTC)


def test_enrichment_of_the_seed_sample() -> None:
    e = run(sample()).enriched
    assert e["sessionSeconds"] == 1799.694
    assert e["sessionMinutes"] == 29.99
    # now - endDate: 2023-07-10T12:00:00Z - 2023-07-07T15:30:00.097Z
    assert e["processingDelaySeconds"] == 246599.903
    assert e["programId"] == "dceea9b7-5740-4f33-b080-a54c27223107"
    assert e["talentPhaseId"] == "9d4d6043-448a-4586-8ed1-59599ca50afc"
    assert e["phaseId"] == "c6c9b798-9fab-4657-af2e-b19a5f165108"
    assert e["phaseOrder"] == 0
    assert e["talentBlockId"] == "6c0cccb8-66fc-464a-a6b7-248c014dbbf5"
    assert e["blockId"] == "16b320a3-27ee-4100-8724-5dbc1e7fb72e"
    assert e["blockOrder"] == 7
    assert (e["cancelationReason"], e["canceledBy"]) == (None, None)
    assert e["startDate"] == "2023-07-07T15:00:00.403000Z"
    assert e["processedAt"] == "2023-07-10T12:00:00Z"
    assert "title" not in e and "cancelationExplanation" not in e


def test_enrichment_is_reproducible() -> None:
    assert orjson.dumps(run(sample()).enriched) == orjson.dumps(run(sample()).enriched)


def test_cancel_fields_only_for_canceled_sessions() -> None:
    doc = sample()
    appt(doc).update(cancelationReason="TALENT_NO_SHOW", canceledBy="TALENT")
    assert run(doc).enriched["cancelationReason"] is None
    appt(doc)["status"] = "CANCELED"
    e = run(doc).enriched
    assert (e["cancelationReason"], e["canceledBy"]) == ("TALENT_NO_SHOW", "TALENT")


def test_datetimes_without_offset_are_utc_and_offsets_are_normalised() -> None:
    doc = sample()
    appt(doc).update(startDate="2023-07-07T17:00:00+02:00", endDate="2023-07-07T15:45:00")
    e = run(doc).enriched
    assert e["startDate"] == "2023-07-07T15:00:00Z"
    assert e["sessionMinutes"] == 45.0


def test_missing_dates_leave_durations_unknown() -> None:
    doc = sample()
    appt(doc).update(startDate=None, endDate=None)
    e = run(doc).enriched
    assert (e["sessionSeconds"], e["sessionMinutes"], e["processingDelaySeconds"]) == (None, None, None)


def test_session_ending_before_it_starts_is_an_enrich_error() -> None:
    doc = sample()
    appt(doc).update(startDate="2023-07-07T16:00:00Z", endDate="2023-07-07T15:00:00Z")
    with pytest.raises(RecordError) as info:
        run(doc)
    assert (info.value.stage, info.value.code) == ("enrich", "ENRICH-NEGATIVE-DURATION")
    assert info.value.path == "/eventData/appointment/endDate"


@pytest.mark.parametrize("block", [None, [], "x", {"order": "first", "programId": 5}])
def test_unreadable_talent_block_loses_placement_not_the_session(block: Any) -> None:
    doc = sample()
    appt(doc)["talentBlock"] = block
    e = run(doc).enriched
    assert (e["programId"], e["blockOrder"], e["phaseId"]) == (None, None, None)
    assert e["talentBlockId"] == "6c0cccb8-66fc-464a-a6b7-248c014dbbf5"  # the appointment's own field


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"", "DECODE-EMPTY"),
        (b"{nope", "DECODE-JSON"),
        (b"[1]", "DECODE-NOT-OBJECT"),
        (b"\xff{}", "DECODE-UTF8"),
    ],
)
def test_undecodable_records(value: bytes, code: str) -> None:
    with pytest.raises(RecordError) as info:
        run(value)
    assert (info.value.stage, info.value.code) == ("decode", code)


# ---- unhandled events and routing --------------------------------------------------------------------------


def test_other_event_names_pass_untouched_to_unhandled() -> None:
    doc = {"id": 42, "eventName": "TalentBlockUnlockedEvent", "eventData": {"anything": [1, 2]}}
    value = b'{"id":42,  "eventName":"TalentBlockUnlockedEvent","eventData":{"anything":[1,2]}}'
    headers = (("trace", b"\x00\x01"),)
    p = run(value, key=b"\xfe-raw-key", headers=headers)
    assert (p.event_id, p.event_type) == ("42", "unhandled")
    assert p.enriched["eventName"] == "TalentBlockUnlockedEvent"
    assert route(p, NOW) == [Emit(UNHANDLED_TOPIC, b"\xfe-raw-key", value, headers)]
    assert json.loads(value) == doc


def test_upstream_event_names_never_become_metric_label_values() -> None:
    names = [f"Event{i}" for i in range(50)]
    assert {run({"id": i, "eventName": name}).event_type for i, name in enumerate(names)} == {"unhandled"}


def test_unhandled_event_without_usable_id_dedupes_on_content() -> None:
    doc = {"id": True, "eventName": "Other"}
    assert run(doc).event_id == content_event_id("Other", doc)
    assert run(doc).event_id == run(copy.deepcopy(doc)).event_id


def test_event_without_a_name_is_rejected() -> None:
    with pytest.raises(RecordError) as info:
        run({"id": 1, "eventData": {}})
    assert (info.value.code, info.value.path) == ("SCHEMA-REQUIRED", "/eventName")


def test_sessions_route_to_the_enriched_topic_and_the_coach_feed() -> None:
    p = run(sample())
    emits = route(p, NOW)
    assert [(e.topic, e.key) for e in emits] == [(ENRICHED_TOPIC, TALENT), (BY_COACH_TOPIC, COACH)]
    assert all(e.value == p.enriched for e in emits)


def test_key_of_uses_key_id_then_talent_id() -> None:
    doc = sample()
    assert key_of(orjson.dumps(doc), None) == b"ec11cbae-15e5-44a6-bfb4-a0604e7d90a8"
    del doc["keyId"]
    assert key_of(orjson.dumps(doc), None) == TALENT.encode()
    assert key_of(b"not json", None) is None
    assert key_of(b"[]", None) is None


def test_rules_wire_the_tables_to_their_keyed_feeds() -> None:
    assert RULES.name == "phoenix"
    assert [(t.name, t.source_topic) for t in RULES.tables] == [
        ("talent-progress", ENRICHED_TOPIC),
        ("coach-activity", BY_COACH_TOPIC),
    ]
    assert [s.name for s in RULES.samples()] == ["vc-session-done"]
    assert RULES.samples()[0].headers == ()  # the body names its type: no EVENT_TYPE_HEADER
    assert EVENT_TYPE_HEADER not in dict(RULES.samples()[0].headers)


# ---- talent progress ---------------------------------------------------------------------------------------


def fold_all(fold: Any, values: Sequence[dict[str, Any] | None]) -> tuple[Any, list[Emit]]:
    state: Any = None
    emits: list[Emit] = []
    for v in values:
        folded = fold(state, v, NOW)
        if folded.changed:
            state = orjson.loads(orjson.dumps(folded.state)) if folded.state is not None else None
        emits.extend(folded.emits)
    return state, emits


def test_first_session_builds_the_progress_and_emits_a_snapshot() -> None:
    state, emits = fold_all(fold_talent_progress, [enriched(sample())])
    assert state["sessionsDone"] == 1
    assert state["minutesInSession"] == 29.99
    assert state["firstSessionAt"] == state["lastSessionAt"] == "2023-07-07T15:00:00.403000Z"
    program = state["programs"]["dceea9b7-5740-4f33-b080-a54c27223107"]
    assert [b["order"] for b in program["blocksDone"]] == [7]
    assert program["currentPhase"]["phaseId"] == "c6c9b798-9fab-4657-af2e-b19a5f165108"
    assert emits == [Emit(TALENT_PROGRESS_TOPIC, TALENT, talent_progress_view(state))]
    assert "appointments" not in emits[0].value


def test_redelivered_value_changes_nothing_and_emits_nothing() -> None:
    value = enriched(sample())
    state, _ = fold_all(fold_talent_progress, [value])
    again = fold_talent_progress(state, value, NOW)
    assert (again.changed, list(again.emits), again.state) == (False, [], state)


def test_done_announced_twice_counts_once() -> None:
    first = enriched(sample())
    second = enriched(version(sample(), 6101700, "DONE", "2023-07-10T08:00:00Z"))
    state, emits = fold_all(fold_talent_progress, [first, second])
    assert state["sessionsDone"] == 1 and state["minutesInSession"] == 29.99
    assert len(emits) == 2  # the newer version is a change of the stored version


def test_canceled_then_done_is_one_done_session_in_either_order() -> None:
    canceled = enriched(
        version(
            sample(), 6100001, "CANCELED", "2023-07-06T08:00:00Z", cancelationReason="TALENT_NEED_MORE_TIME"
        )
    )
    done = enriched(sample())
    for order in ([canceled, done], [done, canceled]):
        state, _ = fold_all(fold_talent_progress, order)
        assert (state["sessionsDone"], state["sessionsCanceled"], state["canceledByReason"]) == (1, 0, {})


def test_done_then_later_canceled_is_a_cancelation_by_reason() -> None:
    later = version(sample(), 6101700, "CANCELED", "2023-07-11T08:00:00Z", cancelationReason=None)
    state, _ = fold_all(fold_talent_progress, [enriched(sample()), enriched(later)])
    assert (state["sessionsDone"], state["sessionsCanceled"]) == (0, 1)
    assert state["canceledByReason"] == {"UNSPECIFIED": 1}
    assert state["minutesInSession"] == 0 and state["programs"] == {}


def test_equal_timestamps_are_ordered_by_bus_id() -> None:
    stamp = "2023-07-09T21:15:26.340Z"
    low = enriched(version(sample(), 5, "CANCELED", stamp, cancelationReason="OTHER"))
    high = enriched(version(sample(), 6, "DONE", stamp))
    for order in ([low, high], [high, low]):
        assert fold_all(fold_talent_progress, order)[0]["sessionsDone"] == 1


def test_deleted_appointment_counts_nowhere_and_cannot_be_resurrected() -> None:
    deleted = enriched(
        version(sample(), 6101700, "DONE", "2023-07-12T00:00:00Z", deletedAt="2023-07-12T00:00:00Z")
    )
    for order in ([enriched(sample()), deleted], [deleted, enriched(sample())]):
        state, _ = fold_all(fold_talent_progress, order)
        assert state["sessionsDone"] == 0


def _session(
    doc: dict[str, Any], appointment_id: str, event_id: int, start: str, order: int, **kw: Any
) -> Any:
    out = copy.deepcopy(doc)
    out["id"] = event_id
    start_at = datetime.fromisoformat(start)
    a = appt(out)
    a.update(id=appointment_id, startDate=start, endDate=(start_at + timedelta(minutes=45)).isoformat(), **kw)
    a["talentBlock"]["order"] = order
    a["talentBlock"]["id"] = a["talentBlockId"] = f"tb-{order}"
    return enriched(out)


def test_blocks_done_are_listed_once_in_order_and_current_phase_follows_the_latest_session() -> None:
    s = sample()
    later = copy.deepcopy(s)
    appt(later)["talentBlock"]["talentPhase"].update(id="tp-1", phaseId="p-1", order=1)
    appt(later)["talentBlock"]["talentPhaseId"] = "tp-1"
    values = [
        _session(later, "a3", 3, "2023-07-20T10:00:00+00:00", 2),
        _session(s, "a1", 1, "2023-07-01T10:00:00+00:00", 1, appointmentType="PART_ONE"),
        _session(s, "a2", 2, "2023-07-05T10:00:00+00:00", 1, appointmentType="PART_TWO"),
    ]
    state, _ = fold_all(fold_talent_progress, values)
    program = state["programs"]["dceea9b7-5740-4f33-b080-a54c27223107"]
    assert [(b["talentBlockId"], b["order"], b["sessions"]) for b in program["blocksDone"]] == [
        ("tb-1", 1, 2),
        ("tb-2", 2, 1),
    ]
    assert program["currentPhase"] == {"talentPhaseId": "tp-1", "phaseId": "p-1", "order": 1}
    assert (state["firstSessionAt"], state["lastSessionAt"]) == (
        "2023-07-01T10:00:00Z",
        "2023-07-20T10:00:00Z",
    )
    assert state["minutesInSession"] == 135.0


def test_erasure_deletes_the_talent_and_tombstones_the_snapshot() -> None:
    state, _ = fold_all(fold_talent_progress, [enriched(sample())])
    erased = fold_talent_progress(state, None, NOW)
    assert erased.state is None and erased.changed
    assert list(erased.emits) == [Emit(TALENT_PROGRESS_TOPIC, TALENT, None)]
    nothing = fold_talent_progress(None, None, NOW)
    assert (nothing.changed, list(nothing.emits)) == (False, [])


def test_fold_rejects_a_value_that_is_not_an_enriched_session() -> None:
    with pytest.raises(RecordError) as info:
        fold_talent_progress(None, {"talentId": TALENT}, NOW)
    assert info.value.code == "SCHEMA-REQUIRED"


# ---- coach activity ----------------------------------------------------------------------------------------


def test_iso_weeks_start_on_monday_not_on_the_epoch_thursday() -> None:
    sunday = datetime(2023, 7, 9, 23, 59, tzinfo=UTC)
    monday = datetime(2023, 7, 10, 0, 0, tzinfo=UTC)
    assert iso_week_start(sunday).isoformat() == "2023-07-03"
    assert iso_week_start(monday).isoformat() == "2023-07-10"
    assert (iso_week_label(iso_week_start(sunday)), iso_week_label(iso_week_start(monday))) == (
        "2023-W27",
        "2023-W28",
    )
    assert iso_week_label(iso_week_start(datetime(2021, 1, 1, tzinfo=UTC))) == "2020-W53"


def _coach_session(
    appointment_id: str, event_id: int, start: datetime, status: str = "DONE"
) -> dict[str, Any]:
    doc = sample()
    doc["id"] = event_id
    appt(doc).update(
        id=appointment_id,
        status=status,
        startDate=start.isoformat(),
        endDate=(start + timedelta(minutes=30)).isoformat(),
        updatedAt=(start + timedelta(hours=2)).isoformat(),
    )
    return enriched(doc)


def test_coach_activity_counts_done_sessions_per_iso_week() -> None:
    monday = datetime(2023, 7, 3, 9, tzinfo=UTC)
    values = [
        _coach_session("a", 1, monday),
        _coach_session("b", 2, monday + timedelta(days=6)),  # Sunday: same ISO week
        _coach_session("c", 3, monday + timedelta(days=7)),
        _coach_session("d", 4, monday + timedelta(days=8), status="CANCELED"),
    ]
    state, emits = fold_all(fold_coach_activity, values)
    view = coach_activity_view(state)
    assert [(w["week"], w["sessionsDone"]) for w in view["weeks"]] == [("2023-W27", 2), ("2023-W28", 1)]
    assert (view["sessionsDone"], view["latestWeek"]) == (3, "2023-W28")
    assert emits[-1] == Emit(COACH_ACTIVITY_TOPIC, COACH, view)


def test_coach_activity_is_idempotent_and_counts_an_appointment_once() -> None:
    start = datetime(2023, 7, 3, 9, tzinfo=UTC)
    value = _coach_session("a", 1, start)
    state, _ = fold_all(fold_coach_activity, [value])
    again = fold_coach_activity(state, value, NOW)
    assert (again.changed, list(again.emits)) == (False, [])
    newer = copy.deepcopy(value)
    newer.update(eventId=2, updatedAt="2023-07-04T00:00:00Z")
    assert fold_all(fold_coach_activity, [value, newer])[0]["sessionsDone"] == 1


def test_coach_retention_keeps_the_latest_n_weeks_in_any_order() -> None:
    fold = make_coach_fold(3)
    monday = datetime(2023, 1, 2, 9, tzinfo=UTC)
    values = [_coach_session(f"a{i}", i, monday + timedelta(weeks=i)) for i in range(5)]
    for order in (values, values[::-1], values[2:] + values[:2]):
        state, _ = fold_all(fold, order)
        assert [w["weekStart"] for w in state["weeks"]] == ["2023-01-16", "2023-01-23", "2023-01-30"]
        assert set(state["appointments"]) == {"a2", "a3", "a4"}  # bounded: older appointments forgotten
    late = fold(state, values[0], NOW)
    assert (late.changed, list(late.emits)) == (False, [])


def test_coach_retention_must_keep_a_week() -> None:
    with pytest.raises(ValueError, match="retention_weeks"):
        make_coach_fold(0)


# ---- generators --------------------------------------------------------------------------------------------


def outcome(record: GeneratedRecord) -> tuple[str, Any]:
    try:
        p = process(RawRecord(value=record.value, key=record.key, topic="phoenix.raw"), NOW)
    except RecordError as err:
        return err.code, None
    return (ACCEPT if p.event_type == "VCSessionDoneEvent" else UNHANDLED), p


def test_invalid_variants_fail_with_the_code_they_claim() -> None:
    rng = random.Random(11)
    variants = invalid_variants(rng, valid_session(rng))
    assert len(variants) >= 15
    for label, value, code in variants:
        assert outcome(GeneratedRecord(value, None, code, label))[0] == code, label


def test_session_stream_is_deterministic() -> None:
    a = session_stream(random.Random(5), sessions=200, talents=20, coaches=4)
    b = session_stream(random.Random(5), sessions=200, talents=20, coaches=4)
    assert [r.value for r in a] == [r.value for r in b]
    assert [r.value for r in a] != [
        r.value for r in session_stream(random.Random(6), sessions=200, talents=20)
    ]


def simulate(records: list[GeneratedRecord]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Stage one (dedupe on event id, as the runtime) then stage two, one table per feed, all in memory."""
    seen: set[str] = set()
    tables: dict[str, dict[str, Any]] = {t.name: {} for t in RULES.tables}
    for record in records:
        kind, p = outcome(record)
        assert kind == record.expect, record.label
        if p is None or p.event_id in seen:
            continue
        seen.add(p.event_id)
        for emit in route(p, NOW):
            for rule in RULES.tables:
                if rule.source_topic == emit.topic:
                    table, key = tables[rule.name], emit.key
                    assert isinstance(key, str)  # feed keys are the table's own (str) keys
                    folded = rule.fold(table.get(key), orjson.loads(orjson.dumps(emit.value)), NOW)
                    if folded.changed:
                        table[key] = orjson.loads(orjson.dumps(folded.state))
    progress = {k: talent_progress_view(v) for k, v in tables["talent-progress"].items()}
    coaches = {k: coach_activity_view(v) for k, v in tables["coach-activity"].items()}
    return progress, coaches


def test_issue_stream_folds_to_the_reference() -> None:
    """3,000 sessions over 200 talents and 20 coaches, with everything production throws at the tables."""
    records = session_stream(random.Random(2024), sessions=3000, talents=200, coaches=20)
    kinds = Counter(r.expect for r in records)
    assert kinds[UNHANDLED] > 0 and sum(n for k, n in kinds.items() if k not in (ACCEPT, UNHANDLED)) > 0
    assert any(r.redelivery for r in records)
    accepted = [orjson.loads(r.value) for r in records if r.expect == ACCEPT and not r.redelivery]
    per_appointment = Counter(appt(d)["id"] for d in accepted)
    assert len(per_appointment) == 3000
    assert max(per_appointment.values()) == 2
    statuses = {(appt(d)["id"], appt(d)["status"]) for d in accepted}
    assert any(s == "CANCELED" for _, s in statuses)
    progress, coaches = simulate(records)
    assert len(progress) == 200 and len(coaches) == 20
    assert progress == reference_progress(records)
    assert coaches == reference_coach_activity(records)
    assert any(len(c["weeks"]) == 12 for c in coaches.values())  # retention really trimmed the 26 weeks


def test_stream_has_versions_delivered_out_of_order_and_any_order_folds_the_same() -> None:
    records = session_stream(random.Random(8), sessions=400, talents=30, coaches=5)
    last_rank: dict[str, tuple[str, int]] = {}
    out_of_order = 0
    for r in records:
        if r.expect == ACCEPT and not r.redelivery:
            doc = orjson.loads(r.value)
            rank = (appt(doc)["updatedAt"], doc["id"])
            held = last_rank.get(appt(doc)["id"])
            out_of_order += held is not None and rank < held
            last_rank[appt(doc)["id"]] = max(rank, held or rank)
    assert out_of_order > 0
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    assert simulate(shuffled) == simulate(records)
    assert simulate(shuffled)[0] == reference_progress(records)
