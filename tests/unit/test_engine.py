"""The one stage engine's pure steps and its one metrics path, without a broker."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from prometheus_client import CollectorRegistry

from app.core.deadletter import CODE, OMITTED, SOURCE_OFFSET, STAGE, deadletter_headers, fitted
from app.core.engine import Accounting, Engine, Step
from app.core.errors import ValidationFailed
from app.core.metrics import Metrics
from app.core.records import DomainRules, Emit, Folded, Processed, RawRecord, TableRule, record_size

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def dl_topic(domain: str) -> str:
    return f"{domain}.deadletter"


def process(raw: RawRecord, now: datetime) -> Processed:
    body = orjson.loads(raw.value or b"null")
    if body.get("bad"):
        raise ValidationFailed("n must be a number", code="SCHEMA-TYPE", path="/n")
    if body.get("boom"):
        raise KeyError("a bug")
    return Processed(event_id=body["id"], event_type="t", payload=body, enriched=body)


def route(processed: Processed, now: datetime) -> list[Emit]:
    if processed.payload.get("route_boom"):
        raise ZeroDivisionError
    return [Emit("d.out", processed.event_id, processed.enriched)]


RULES = DomainRules(name="d", process=process, route=route)


def rec(offset: int, body: dict[str, Any], key: bytes | None = b"k", partition: int = 0) -> RawRecord:
    return RawRecord(orjson.dumps(body), key, (), "d.raw", partition, offset)


def test_stage_one_routes_dedupes_and_deadletters_in_order() -> None:
    engine = Engine(dl_topic)
    records = [
        rec(0, {"id": "a"}),
        rec(1, {"id": "a"}),  # the same event again in the batch
        rec(2, {"id": "old"}),  # seen before the batch
        rec(3, {"id": "b", "bad": True}),
        rec(4, {"id": "c", "boom": True}),
        rec(5, {"id": "d", "route_boom": True}),
        rec(6, {"id": "e"}),
    ]
    step = engine.stage_one(RULES, records, lambda raw, event_id: event_id == "old", NOW)
    assert [e.topic for e in step.emits] == ["d.out", "d.deadletter", "d.deadletter", "d.deadletter", "d.out"]
    assert step.emits[0].key == b"a" and step.emits[0].value == b'{"id":"a"}'  # wire form: bytes
    assert [event_id for _, event_id in step.marks] == ["a", "e"]
    assert step.dedupe_hits == 2 and step.n == 7
    codes = [(r.error.stage, r.error.code, r.raw.offset) for r in step.rejected]
    # process() bugs are booked to validate, route() bugs to enrich, on every driver
    assert codes == [
        ("validate", "SCHEMA-TYPE", 3),
        ("validate", "INTERNAL-ERROR", 4),
        ("enrich", "INTERNAL-ERROR", 5),
    ]
    dead = dict(step.emits[1].headers)
    assert dead[CODE] == b"SCHEMA-TYPE" and dead[STAGE] == b"validate" and dead[SOURCE_OFFSET] == b"3"
    assert step.emits[1].value == records[3].value and step.emits[1].key == b"k"  # the record untouched


def count_fold(state: Any, value: Any, now: datetime) -> Folded:
    if value is None:
        return Folded(None)
    if value.get("bad"):
        raise ValidationFailed("bad feed value", code="FEED-BAD")
    total = (state or {"n": 0})["n"] + value["n"]
    if value["n"] == 0:
        return Folded(state, changed=False)
    return Folded({"n": total}, emits=[Emit("d.snap", "k", {"n": total})])


def test_fold_decodes_a_key_once_per_batch_and_writes_its_last_state() -> None:
    engine = Engine(dl_topic)
    reads: list[tuple[int, bytes]] = []

    def state_of(partition: int, key: bytes) -> Any:
        reads.append((partition, key))
        return {"n": 10} if key == b"k" else None

    rule = TableRule("totals", "d.feed", count_fold)
    records = [
        rec(7, {"n": 1}),
        rec(8, {"n": 2}),
        rec(9, {"n": 0}),
        rec(10, {"bad": True}),
        rec(11, {"n": 5}, key=b"other", partition=3),
        rec(12, {"n": 1}, key=None),
    ]
    step = engine.fold("d", rule, records, state_of, NOW)
    assert reads == [(0, b"k"), (3, b"other")]
    assert {k: (w.partition, orjson.loads(w.value or b"null"), w.offset) for k, w in step.writes.items()} == {
        b"k": (0, {"n": 13}, 8),
        b"other": (3, {"n": 5}, 11),
    }
    assert step.outcomes == {"applied": 3, "unchanged": 1}
    assert [r.error.code for r in step.rejected] == ["FEED-BAD", "FEED-NO-KEY"]
    assert [orjson.loads(e.value) for e in step.emits if e.topic == "d.snap"] == [
        {"n": 11},
        {"n": 13},
        {"n": 5},
    ]


def test_a_compacted_topic_gets_each_keys_last_value_of_a_batch_in_its_place() -> None:
    """A snapshot topic promises each key's latest value: one batch sends one snapshot per key, the last, where it
    fell; every other emit goes out one for one."""

    def fold(state: Any, value: Any, now: datetime) -> Folded:
        total = (state or {"n": 0})["n"] + value["n"]
        snap = Emit("d.snap", value["k"], None if value.get("erase") else {"n": total})
        return Folded({"n": total}, emits=[Emit("d.cmd", value["k"], {"n": total}), snap])

    engine = Engine(dl_topic, compacted={"d.snap"})
    values: list[dict[str, Any]] = [
        {"k": "a", "n": 1},
        {"k": "b", "n": 1},
        {"k": "a", "n": 2},
        {"k": "b", "n": 1, "erase": True},
    ]
    step = engine.fold(
        "d",
        TableRule("totals", "d.feed", fold),
        [rec(i, v, key=v["k"].encode()) for i, v in enumerate(values)],
        lambda p, k: None,
        NOW,
    )
    sent = [(e.topic, e.key, orjson.loads(e.value) if e.value else None) for e in step.emits]
    assert sent == [
        ("d.cmd", b"a", {"n": 1}),
        ("d.cmd", b"b", {"n": 1}),
        ("d.cmd", b"a", {"n": 3}),
        ("d.snap", b"a", {"n": 3}),
        ("d.cmd", b"b", {"n": 2}),
        ("d.snap", b"b", None),  # the tombstone is the key's last value
    ]
    plain = Engine(dl_topic).fold(
        "d", TableRule("totals", "d.feed", fold), [rec(0, values[0], key=b"a")] * 2, lambda p, k: None, NOW
    )
    assert [e.topic for e in plain.emits] == [
        "d.cmd",
        "d.snap",
        "d.cmd",
        "d.snap",
    ]  # not compacted: all of them


def test_a_tombstone_deletes_the_key() -> None:
    step = Engine(dl_topic).fold(
        "d",
        TableRule("totals", "d.feed", count_fold),
        [RawRecord(None, b"k", (), "d.feed", 2, 4)],
        lambda p, k: {"n": 1},
        NOW,
    )
    assert step.writes[b"k"].value is None and step.writes[b"k"].partition == 2


def caught_value_error() -> ValueError:
    try:
        int("not a number")
    except ValueError as err:
        return err
    raise AssertionError("int() accepted it")


def checked(raw: RawRecord, now: datetime) -> Processed:
    """``process`` whose rejection is raised from one error while another is handled: a cause and a context,
    each with its own traceback, as the domains' validation can leave them."""
    try:
        return process(raw, now)
    except ValidationFailed as err:
        raise ValidationFailed(err.message, code=err.code, path=err.path) from caught_value_error()


def test_a_batch_with_dead_letters_is_freed_without_the_collector() -> None:
    """A rejected record's error outlives its ``except``. Its traceback (and its cause's) would hold the step's
    frames, whose locals hold the step, which holds the error: a cycle per batch that only the collector frees,
    and a worker collects rarely (design note 12), so whole batches piled up in its memory."""
    engine = Engine(dl_topic)
    rules = DomainRules(name="d", process=checked, route=route)
    rule = TableRule("totals", "d.feed", count_fold)
    gc.collect()
    gc.disable()
    try:
        one = engine.stage_one(
            rules, [rec(0, {"id": "a"}), rec(1, {"id": "b", "bad": True})], lambda r, e: False, NOW
        )
        two = engine.fold("d", rule, [rec(2, {"n": 1}), rec(3, {"bad": True})], lambda p, k: None, NOW)
        assert [r.error.code for r in one.rejected + two.rejected] == ["SCHEMA-TYPE", "FEED-BAD"]
        assert isinstance(
            one.rejected[0].error.__cause__, ValueError
        )  # the cause is kept, its frames are not
        del one, two
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_accounting_is_one_path_for_every_driver() -> None:
    metrics = Metrics(CollectorRegistry())
    records = [rec(0, {"id": "a"}), rec(1, {"id": "a"}), rec(2, {"id": "b", "bad": True})]
    step = Engine(dl_topic).stage_one(RULES, records, lambda raw, event_id: False, NOW)
    Accounting(metrics, dl_topic).stage_one("d", step, 0.02, NOW)

    def value(name: str, **labels: str) -> float:
        return metrics.registry.get_sample_value(name, labels) or 0.0

    assert value("switchyard_events_in_total", domain="d") == 3
    assert value("switchyard_events_accepted_total", domain="d", event_type="t") == 1
    assert value("switchyard_dedupe_hits_total", domain="d") == 1
    assert (
        value("switchyard_events_rejected_total", domain="d", stage="validate", error_code="SCHEMA-TYPE") == 1
    )
    assert value("switchyard_deadletter_writes_total", topic="d.deadletter") == 1
    assert value("switchyard_outputs_total", topic="d.out") == 1
    assert value("switchyard_outputs_total", topic="d.deadletter") == 0  # dead letters are counted as such
    # every record waited for its batch: one observation each, of the batch's time
    assert value("switchyard_processing_seconds_count", domain="d") == 3
    assert value("switchyard_processing_seconds_sum", domain="d") == 3 * 0.02
    # the injected clock, not the wall clock
    assert value("switchyard_last_event_timestamp_seconds", domain="d") == NOW.timestamp()


def test_an_empty_step_counts_nothing() -> None:
    metrics = Metrics(CollectorRegistry())
    Accounting(metrics, dl_topic).fold("d", "totals", Step())
    assert (
        metrics.registry.get_sample_value(
            "switchyard_table_updates_total", {"table": "d.totals", "outcome": "applied"}
        )
        is None
    )


def test_an_output_or_state_over_the_record_limit_dead_letters_its_record_alone() -> None:
    """The producer refuses a record over its ``max_request_size`` by failing the send, and with it the batch; the
    engine finds it first and dead-letters the one record (OUTPUT-TOO-LARGE), keeping the state it had."""
    limit = 2_000
    engine = Engine(dl_topic, max_record_bytes=limit)
    stage_one = engine.stage_one(
        RULES,
        [rec(0, {"id": "a"}), rec(1, {"id": "b", "pad": "x" * limit}), rec(2, {"id": "c"})],
        lambda raw, event_id: False,
        NOW,
    )
    assert [e.topic for e in stage_one.emits] == ["d.out", "d.deadletter", "d.out"]
    assert [(r.error.stage, r.error.code, r.raw.offset) for r in stage_one.rejected] == [
        ("enrich", "OUTPUT-TOO-LARGE", 1)
    ]
    assert (
        "d.out" in stage_one.rejected[0].error.message and "x" * 10 not in stage_one.rejected[0].error.message
    )
    assert [event_id for _, event_id in stage_one.marks] == ["a", "c"]

    def grow(state: Any, value: Any, now: datetime) -> Folded:
        grown = {"items": [*(state or {"items": []})["items"], value["item"]]}
        return Folded(grown, emits=[Emit("d.snap", "k", {"count": len(grown["items"])})])

    items = [rec(10 + i, {"item": "y" * 700}) for i in range(4)]  # the third makes the state too big
    fold = engine.fold("d", TableRule("items", "d.feed", grow), items, lambda p, k: None, NOW)
    assert [(r.error.code, r.raw.offset) for r in fold.rejected] == [
        ("OUTPUT-TOO-LARGE", 12),
        ("OUTPUT-TOO-LARGE", 13),
    ]
    assert len(orjson.loads(fold.writes[b"k"].value or b"{}")["items"]) == 2  # the last state that fits
    assert [orjson.loads(e.value) for e in fold.emits if e.topic == "d.snap"] == [{"count": 1}, {"count": 2}]


def test_a_dead_letter_over_the_record_limit_leaves_out_its_value_and_says_so() -> None:
    """A raw record just under the broker's limit plus the error headers would fail its batch at the producer for
    good; its dead letter keeps the key, the original and the error headers, and names what it left out."""
    limit = 2_000
    engine = Engine(dl_topic, max_record_bytes=limit)
    big = RawRecord(
        orjson.dumps({"id": "b", "bad": True, "pad": "x" * 1_800}), b"k", (("h", b"1"),), "d.raw", 0, 7
    )
    assert record_size(big.key, big.value, big.headers) <= limit  # the broker and the producer took it
    step = engine.stage_one(RULES, [rec(6, {"id": "a", "bad": True}), big], lambda raw, event_id: False, NOW)
    small, dead = step.emits
    assert small.value is not None and OMITTED not in dict(small.headers)
    assert (dead.topic, dead.key, dead.value) == ("d.deadletter", b"k", None)
    assert dead.headers[0] == ("h", b"1")
    assert dict(dead.headers)[OMITTED] == f"value:{len(big.value or b'')}".encode()
    assert dict(dead.headers)[CODE] == b"SCHEMA-TYPE" and dict(dead.headers)[SOURCE_OFFSET] == b"7"
    assert record_size(dead.key, dead.value, dead.headers) <= limit


def test_a_dead_letter_leaves_out_headers_then_the_key_only_when_the_value_was_not_enough() -> None:
    err = ValidationFailed("n must be a number", code="SCHEMA-TYPE", path="/n")
    raw = RawRecord(b"v" * 100, b"k" * 300, (("h", b"x" * 300),), "d.raw", 0, 1)
    headers = deadletter_headers(raw, err, NOW)
    errors_only = headers[1:]

    def size(limit: int) -> tuple[bytes | None, bytes | None, tuple[tuple[str, bytes], ...]]:
        return fitted(raw, headers, limit)

    whole = record_size(raw.key, raw.value, headers)
    assert size(whole) == (raw.key, raw.value, headers)
    assert size(whole - 1)[1] is None and dict(size(whole - 1)[2])[OMITTED] == b"value:100"
    no_headers = size(whole - 150)
    assert no_headers[0] == raw.key and no_headers[2][:-1] == errors_only
    assert no_headers[2][-1] == (OMITTED, b"value:100,headers:301")
    bare = size(whole - 500)
    assert bare == (None, None, (*errors_only, (OMITTED, b"value:100,headers:301,key:300")))


@pytest.mark.parametrize("key_len", [0, 1, 127, 128, 20_000])
@pytest.mark.parametrize("value_len", [0, 1, 63, 64, 8_191, 8_192, 999_000])
@pytest.mark.parametrize(
    "headers", [(), (("sy-trace", b"t" * 55),), tuple((f"h{i}", b"v" * i) for i in range(12))]
)
def test_record_size_bounds_what_the_producer_counts(
    key_len: int, value_len: int, headers: tuple[tuple[str, bytes], ...]
) -> None:
    """The engine's limit must hold at the producer: its size is never under aiokafka's own estimate."""
    key, value = b"k" * key_len, b"v" * value_len
    wire = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, list(headers))
    assert wire <= record_size(key, value, headers) <= wire + 64 + 10 * len(headers)
