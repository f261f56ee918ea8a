"""Pismo's pure side: process (audit record), route (three topics), the phases fold, the generator."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import yaml

from app.core.avro import decode_single_object, load_schema
from app.core.errors import EnrichError, RecordError, ValidationFailed
from app.core.records import Emit, RawRecord, content_event_id
from app.domains.pismo.audit import AUDIT_NAMESPACE, avro_datum
from app.domains.pismo.generate import (
    INVALID_VARIANTS,
    Generated,
    as_raw_records,
    generate,
    invalid_record,
    reference_phase_counts,
    valid_event,
)
from app.domains.pismo.rules import (
    AUDIT_TOPIC,
    FAILURES_TOPIC,
    PHASE_FEED_TOPIC,
    RULES,
    key_of,
    process,
    route,
)
from app.domains.pismo.state import PHASELESS_KEY, empty_state, fold_phase, phase_key
from app.paths import SAMPLES_DIR, TOPICS_DIR

NOW = datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
SUCCESS = (SAMPLES_DIR / "pismo" / "success-update.json").read_bytes()
FAIL = (SAMPLES_DIR / "pismo" / "fail-creation.json").read_bytes()
NO_PHASE = (SAMPLES_DIR / "pismo" / "success-no-phase.json").read_bytes()


def raw(
    value: bytes | None, *, partition: int = 2, offset: int = 41, timestamp_ms: int | None = None
) -> RawRecord:
    return RawRecord(value, b"k", (), "pismo.raw", partition, offset, timestamp_ms)


def doc_bytes(**changes: Any) -> bytes:
    doc = json.loads(SUCCESS)
    doc.update(changes)
    return json.dumps(doc).encode()


# ---- process ---------------------------------------------------------------------------------------------


def test_process_builds_the_audit_record() -> None:
    p = process(raw(SUCCESS, timestamp_ms=1_767_259_799_250), NOW)
    event_id = content_event_id("customer_outgoing", json.loads(SUCCESS))
    assert p.event_id == event_id
    assert p.event_type == "customer_outgoing"
    assert p.key == "5f0c6b2e-8d1a-4c3e-9b7a-2e4f6a8c0d13"
    assert p.event_time == datetime(2026, 1, 1, 9, 29, 59, 250000, tzinfo=UTC)
    assert p.payload.entity.customer_id == 1234
    assert p.enriched == {
        "audit_id": str(uuid.uuid5(AUDIT_NAMESPACE, event_id)),
        "event_id": event_id,
        "event_type": "customer_outgoing",
        "received_at": "2026-01-01T09:30:00Z",
        "event_time": "2026-01-01T09:29:59.250000Z",
        "code": "MIGR-0001",
        "message": "Customer migration registration approved",
        "status": "SUCCESS",
        "operation": "UPDATE",
        "migration": {
            "id": "5f0c6b2e-8d1a-4c3e-9b7a-2e4f6a8c0d13",
            "version_date": "2021-08-11T11:25:00.000Z",
            "account_id": "ACC-00042917",
            "phase_id": "Rollout_Jan2022",
        },
        "entity": {"account_id": 9999, "customer_id": 1234},
        "source": {"topic": "pismo.raw", "partition": 2, "offset": 41},
        "original_sha256": hashlib.sha256(SUCCESS).hexdigest(),
    }
    assert json.loads(json.dumps(p.enriched)) == p.enriched  # JSON-ready


def test_optional_fields_absent_become_null_in_the_audit() -> None:
    p = process(raw(NO_PHASE), NOW)
    assert p.enriched["operation"] is None
    assert p.enriched["migration"]["phase_id"] is None
    assert p.enriched["event_time"] is None
    assert process(raw(FAIL), NOW).enriched["entity"] is None


def test_integral_float_ids_are_audited_as_integers() -> None:
    p = process(raw(doc_bytes(entity={"account_id": 9999.0, "customer_id": 1.234e3})), NOW)
    assert p.enriched["entity"] == {"account_id": 9999, "customer_id": 1234}
    assert type(p.enriched["entity"]["account_id"]) is int


def test_redelivered_or_republished_event_keeps_its_ids_but_not_its_byte_hash() -> None:
    first = process(raw(SUCCESS, offset=41), NOW)
    again = process(raw(SUCCESS, offset=977, partition=5), NOW + timedelta(hours=1))
    compact = orjson.dumps(json.loads(SUCCESS))
    republished = process(raw(compact), NOW)
    assert first.event_id == again.event_id == republished.event_id
    assert first.enriched["audit_id"] == again.enriched["audit_id"] == republished.enriched["audit_id"]
    assert republished.enriched["original_sha256"] == hashlib.sha256(compact).hexdigest()
    assert republished.enriched["original_sha256"] != first.enriched["original_sha256"]
    other = process(raw(doc_bytes(code="MIGR-0003")), NOW)
    assert other.event_id != first.event_id and other.enriched["audit_id"] != first.enriched["audit_id"]


def test_now_only_moves_received_at() -> None:
    a = process(raw(SUCCESS), NOW).enriched
    b = process(raw(SUCCESS), NOW + timedelta(days=3)).enriched
    assert {k for k in a if a[k] != b[k]} == {"received_at"}


@pytest.mark.parametrize(
    ("value", "code", "stage"),
    [
        (None, "DECODE-EMPTY", "decode"),
        (b"", "DECODE-EMPTY", "decode"),
        (b'{"status": "SUCC', "DECODE-JSON", "decode"),
        (b"[1, 2]", "DECODE-NOT-OBJECT", "decode"),
        ('{"message": "Migração"}'.encode("latin-1"), "DECODE-UTF8", "decode"),
        (doc_bytes(status="PENDING-SECRET"), "SCHEMA-ENUM", "validate"),
        (doc_bytes(entity={"account_id": "SECRET-9999", "customer_id": 1}), "SCHEMA-TYPE", "validate"),
        (doc_bytes(entity={"account_id": 2**63, "customer_id": 1}), "ENRICH-OUT-OF-RANGE", "enrich"),
    ],
)
def test_rejections_carry_code_and_stage_never_the_value(value: bytes | None, code: str, stage: str) -> None:
    with pytest.raises(RecordError) as info:
        process(raw(value), NOW)
    assert (info.value.code, info.value.stage) == (code, stage)
    assert "SECRET" not in str(info.value) and str(2**63) not in str(info.value)


def test_rejection_paths_are_json_pointers() -> None:
    with pytest.raises(ValidationFailed) as info:
        process(raw(doc_bytes(migration={"id": "m", "account_id": "a", "version_date": "2021-08-11"})), NOW)
    assert (info.value.code, info.value.path) == ("SCHEMA-FORMAT", "/migration/version_date")
    with pytest.raises(EnrichError) as enrich:
        process(raw(doc_bytes(entity={"account_id": 1, "customer_id": -(2**63) - 1})), NOW)
    assert enrich.value.path == "/entity/customer_id"
    lossy = doc_bytes(entity={"account_id": 1, "customer_id": 1}).replace(
        b'"account_id": 1,', b'"account_id": 9007199254740993.0,'
    )
    with pytest.raises(EnrichError) as rounded:
        process(raw(lossy), NOW)
    assert (rounded.value.code, rounded.value.path) == ("ENRICH-OUT-OF-RANGE", "/entity/account_id")
    assert process(raw(doc_bytes(entity={"account_id": 2**63 - 1, "customer_id": -(2**63)})), NOW)


# ---- route -----------------------------------------------------------------------------------------------


def test_success_goes_to_audit_and_phase_feed() -> None:
    p = process(raw(SUCCESS, timestamp_ms=1_767_259_799_250), NOW)
    audit, feed = route(p, NOW)
    assert (audit.topic, audit.key) == (AUDIT_TOPIC, p.key)
    schema, decoded = decode_single_object(audit.value)
    assert schema is load_schema("migration_audit")
    assert {**decoded, "audit_id": str(decoded["audit_id"])} == avro_datum(p.enriched)
    assert decoded["received_at"] == NOW
    assert feed == Emit(
        PHASE_FEED_TOPIC,
        "Rollout_Jan2022",
        {
            "event_id": p.event_id,
            "phase_id": "Rollout_Jan2022",
            "migration_id": p.key,
            "status": "SUCCESS",
            "operation": "UPDATE",
            "source": {"topic": "pismo.raw", "partition": 2, "offset": 41},
        },
    )


def test_fail_also_goes_to_the_failures_topic_as_json() -> None:
    p = process(raw(FAIL), NOW)
    emits = route(p, NOW)
    assert [e.topic for e in emits] == [AUDIT_TOPIC, FAILURES_TOPIC, PHASE_FEED_TOPIC]
    failure = emits[1]
    assert (failure.key, failure.value) == (p.key, p.enriched)
    orjson.dumps(failure.value)


def test_results_without_phase_or_operation_feed_the_phaseless_key() -> None:
    feed = route(process(raw(NO_PHASE), NOW), NOW)[-1]
    assert feed.key == PHASELESS_KEY
    assert (feed.value["phase_id"], feed.value["operation"]) == (None, "NONE")


@pytest.mark.parametrize("phase_id", ["none", "", "~", "~~", "~none", "Rollout_Jan2022", " ~"])
def test_no_phase_id_shares_a_table_key_with_another_phase_or_with_no_phase(phase_id: str) -> None:
    """A phase literally named "none" (or "~", or "") is a phase of its own, never the results without one."""
    doc = json.loads(NO_PHASE)
    doc["migration"]["phase_id"] = phase_id
    feed = route(process(raw(json.dumps(doc).encode()), NOW), NOW)[-1]
    assert feed.key == phase_key(phase_id) != PHASELESS_KEY
    assert feed.value["phase_id"] == phase_id
    others = {"none", "", "~", "~~", "~none", "Rollout_Jan2022", " ~", "~~~", "none~"} - {phase_id}
    assert phase_key(phase_id) not in {phase_key(o) for o in others}


def test_phase_keys_of_ordinary_phase_ids_are_the_ids_themselves() -> None:
    """Ids not starting with "~" (every realistic one) keep their key, so URLs and stored keys stay readable."""
    assert phase_key("Rollout_Jan2022") == "Rollout_Jan2022"
    assert phase_key("none") == "none"
    assert phase_key("~x") == "~~x"


def test_every_topic_routed_to_is_in_the_catalog_with_the_promised_value_format() -> None:
    catalog = yaml.safe_load((TOPICS_DIR / "catalog.yaml").read_text())["topics"]
    assert catalog[AUDIT_TOPIC]["value"] == "avro"
    assert catalog[FAILURES_TOPIC]["value"] == "json"
    assert catalog[PHASE_FEED_TOPIC]["role"] == "feed"
    assert [t.source_topic for t in RULES.tables] == [PHASE_FEED_TOPIC]


def test_rules_wiring() -> None:
    assert RULES.name == "pismo"
    assert list(RULES.event_types) == ["customer_outgoing"]
    assert sorted(s.name for s in RULES.samples()) == ["fail-creation", "success-no-phase", "success-update"]
    assert all(s.event_type is None for s in RULES.samples())
    assert key_of(SUCCESS, None) == b"5f0c6b2e-8d1a-4c3e-9b7a-2e4f6a8c0d13"
    assert key_of(b"not json", None) is None
    assert key_of(b"[1]", None) is None
    assert key_of(b'{"migration": {"id": 7}}', None) is None


# ---- fold ------------------------------------------------------------------------------------------------


def feed_value(
    status: str = "SUCCESS", operation: str = "UPDATE", *, partition: int = 0, offset: int = 0
) -> Any:
    return {
        "event_id": f"e-{partition}-{offset}",
        "phase_id": "P1",
        "migration_id": "m",
        "status": status,
        "operation": operation,
        "source": {"topic": "pismo.raw", "partition": partition, "offset": offset},
    }


def test_fold_counts_by_operation_and_status() -> None:
    state = None
    for i, (status, op) in enumerate([("SUCCESS", "UPDATE"), ("FAIL", "CREATION"), ("SUCCESS", "NONE")]):
        folded = fold_phase(state, feed_value(status, op, offset=i), NOW)
        assert folded.changed and folded.emits == ()
        state = folded.state
    assert state is not None
    assert state["phase_id"] == "P1"
    assert state["total"] == 3
    assert state["by_status"] == {"SUCCESS": 2, "FAIL": 1}
    assert state["by_operation"] == {
        "CREATION": {"SUCCESS": 0, "FAIL": 1},
        "UPDATE": {"SUCCESS": 1, "FAIL": 0},
        "NONE": {"SUCCESS": 1, "FAIL": 0},
    }
    assert state["high_water"] == {"pismo.raw/0": 2}
    assert state["updated_at"] == "2026-01-01T09:30:00Z"
    assert json.loads(json.dumps(state)) == state


def test_a_redelivered_value_changes_nothing() -> None:
    first = fold_phase(None, feed_value(offset=10), NOW).state
    snapshot = json.dumps(first)
    for offset in (10, 3):
        again = fold_phase(first, feed_value(offset=offset), NOW + timedelta(minutes=5))
        assert not again.changed
        assert again.state == first
    assert json.dumps(first) == snapshot  # the input state is never mutated


def test_high_water_is_per_raw_partition() -> None:
    state = fold_phase(None, feed_value(partition=0, offset=10), NOW).state
    state = fold_phase(state, feed_value(partition=1, offset=2), NOW).state
    assert state["total"] == 2
    assert state["high_water"] == {"pismo.raw/0": 10, "pismo.raw/1": 2}


def test_values_without_source_offsets_are_always_counted() -> None:
    state = fold_phase(None, feed_value(partition=-1, offset=-1), NOW).state
    state = fold_phase(state, feed_value(partition=-1, offset=-1), NOW).state
    assert state["total"] == 2
    assert state["high_water"] == {}


def test_tombstones_and_malformed_values() -> None:
    state = empty_state("P1")
    assert fold_phase(state, None, NOW).changed is False
    for bad in ({**feed_value(), "status": "MAYBE"}, {**feed_value(), "operation": None}, {"status": "FAIL"}):
        with pytest.raises(EnrichError) as info:
            fold_phase(state, bad, NOW)
        assert info.value.code == "FEED-INVALID"


# ---- generator and the whole pure pipeline ---------------------------------------------------------------


def run_pipeline(records: list[Generated]) -> tuple[dict[str, Any], Counter[str]]:
    """Stage one with dedupe, then stage two with every feed value delivered, and a tail redelivered twice."""
    seen: set[str] = set()
    feed: list[Emit] = []
    outcomes: Counter[str] = Counter()
    for g, r in zip(records, as_raw_records(records), strict=True):
        try:
            p = process(r, NOW)
        except RecordError as err:
            assert err.code == g.expected_code, g.label
            outcomes["rejected"] += 1
            continue
        assert g.valid, g.label
        if p.event_id in seen:
            outcomes["deduped"] += 1
            continue
        seen.add(p.event_id)
        emits = route(p, NOW)
        outcomes.update(e.topic for e in emits)
        feed.extend(e for e in emits if e.topic == PHASE_FEED_TOPIC)
    tables: dict[str, Any] = {}
    for emit in [*feed, *feed[len(feed) // 2 :], *feed[-5:]]:
        key = emit.key
        assert isinstance(key, str)
        folded = fold_phase(tables.get(key), json.loads(orjson.dumps(emit.value)), NOW)
        if folded.changed:
            tables[key] = folded.state
    return tables, outcomes


def test_pipeline_matches_the_reference_phase_counts() -> None:
    records = generate(random.Random(7), 1500)
    tables, outcomes = run_pipeline(records)
    reference = reference_phase_counts(records)
    assert {k: v["by_operation"] for k, v in tables.items()} == reference
    assert {k: v["total"] for k, v in tables.items()} == {
        k: sum(sum(c.values()) for c in ops.values()) for k, ops in reference.items()
    }
    assert outcomes["deduped"] == sum(1 for g in records if "duplicate" in g.label)
    assert (
        outcomes[AUDIT_TOPIC]
        == outcomes[PHASE_FEED_TOPIC]
        == sum(sum(t["by_status"].values()) for t in tables.values())
    )
    assert outcomes[FAILURES_TOPIC] == sum(t["by_status"]["FAIL"] for t in tables.values())
    assert PHASELESS_KEY in tables and len(tables) >= 4


def test_generator_is_deterministic_and_mixes_what_it_promises() -> None:
    records = generate(random.Random(11), 2000)
    assert records == generate(random.Random(11), 2000)
    assert records != generate(random.Random(12), 2000)
    labels = Counter(g.label for g in records)
    invalid = sum(1 for g in records if not g.valid)
    assert 0.07 <= invalid / len(records) <= 0.13
    assert labels["duplicate"] > 20 and labels["reformatted-duplicate"] > 20
    sizes = [len(g.value) for g in records if g.label == "valid"]
    assert 400 <= sum(sizes) / len(sizes) <= 600
    statuses = Counter(json.loads(g.value)["status"] for g in records if g.label == "valid")
    assert statuses["FAIL"] > 0.1 * len(sizes) and statuses["SUCCESS"] > 0.6 * len(sizes)


def test_reformatted_duplicates_differ_in_bytes_only() -> None:
    records = generate(random.Random(3), 600)
    originals = {
        json.dumps(json.loads(g.value), sort_keys=True): g.value for g in records if g.label == "valid"
    }
    reformatted = [g for g in records if g.label == "reformatted-duplicate"]
    assert reformatted
    for g in reformatted:
        original = originals[json.dumps(json.loads(g.value), sort_keys=True)]
        assert g.value != original
        assert process(raw(g.value), NOW).event_id == process(raw(original), NOW).event_id


@pytest.mark.parametrize("label", sorted(INVALID_VARIANTS))
def test_every_invalid_variant_raises_its_labelled_code(label: str) -> None:
    rng = random.Random(label)
    produced = 0
    for _ in range(500):
        g = invalid_record(rng)
        if g.label != label:
            continue
        produced += 1
        with pytest.raises(RecordError) as info:
            process(raw(g.value), NOW)
        assert info.value.code == g.expected_code == INVALID_VARIANTS[label][0]
    assert produced > 0


def test_valid_events_are_valid_and_keyed_by_migration_id() -> None:
    rng = random.Random(5)
    for _ in range(200):
        doc = valid_event(rng)
        p = process(raw(orjson.dumps(doc)), NOW)
        assert p.key == doc["migration"]["id"]
