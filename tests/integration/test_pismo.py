"""Pismo on a real broker: the audit trail is exactly-once, even when the worker is SIGKILLed mid-transaction.

Expectations are computed from the generator's own records (bytes, labels, standard-library JSON), never from
the rules, so agreement means the transactional stage, its dedupe, the dead-letter path, the Avro audit and the
``phases`` fold together do what they promise on a real Kafka broker.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.core import deadletter as dl
from app.core.avro import decode_confluent, decode_single_object, schema_from_json
from app.core.kafka import partition_count
from app.domains.pismo.generate import Generated, generate, reference_phase_counts
from app.domains.pismo.views import PHASE_PATH, PHASES_PATH
from app.paths import SAMPLES_DIR
from tests.registry import TestRegistry
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 3
# A SIGKILLed worker leaves the consumer group only when its session times out: Faust's default (60 s) would
# make the crash test mostly waiting. 6 s is the broker's minimum. Faust reads these from the environment.
FAST_FAILOVER = {"SWITCHYARD_SESSION_TIMEOUT_SECONDS": "6", "SWITCHYARD_HEARTBEAT_INTERVAL_SECONDS": "1"}

# Where each invalid variant is wrong, written from the seed schema, not read back from the validator.
EXPECTED_PATH = {
    "missing-code": "/code",
    "missing-message": "/message",
    "missing-status": "/status",
    "missing-migration": "/migration",
    "missing-migration-id": "/migration/id",
    "missing-version-date": "/migration/version_date",
    "missing-migration-account": "/migration/account_id",
    "missing-entity-customer": "/entity/customer_id",
    "status-unknown": "/status",
    "operation-unknown": "/operation",
    "extra-top": "/migrated_at",
    "extra-migration": "/migration/country",
    "extra-entity": "/entity/program_id",
    "entity-id-string": "/entity/account_id",
    "entity-id-bool": "/entity/customer_id",
    "entity-id-fraction": "/entity/account_id",
    "phase-null": "/migration/phase_id",
    "migration-id-number": "/migration/id",
    "date-no-offset": "/migration/version_date",
    "date-impossible": "/migration/version_date",
    "date-space": "/migration/version_date",
    "entity-id-over-long": "/entity/account_id",
    "truncated-json": "",
    "empty": "",
    "top-level-array": "",
    "latin-1": "",
}


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        f"psm{uuid.uuid4().hex[:10]}",
        tmp_path,
        SWITCHYARD_DOMAINS="pismo",
        SWITCHYARD_TOPIC_PARTITIONS=str(PARTITIONS),
        **FAST_FAILOVER,
    )
    d.cli("topics", "create")
    yield d
    d.stop_all()


# ---- expectations from the generated records -----------------------------------------------------------------
def identity(value: bytes) -> str:
    return json.dumps(json.loads(value), sort_keys=True, separators=(",", ":"))


@dataclass
class Expected:
    """The first delivery of every distinct valid event (what the audit must hold), by sha256 of its bytes."""

    firsts: dict[str, Generated]
    invalid: list[Generated]

    @classmethod
    def of(cls, records: list[Generated]) -> Expected:
        seen: set[str] = set()
        firsts: dict[str, Generated] = {}
        for g in records:
            if g.valid and (ident := identity(g.value)) not in seen:
                seen.add(ident)
                firsts[hashlib.sha256(g.value).hexdigest()] = g
        return cls(firsts, [g for g in records if not g.valid])

    @property
    def failures(self) -> set[str]:
        return {sha for sha, g in self.firsts.items() if json.loads(g.value)["status"] == "FAIL"}


def audit_fields(doc: dict[str, Any]) -> dict[str, Any]:
    """The audit record's copy of the input, as the seed's field list says it must be kept."""
    m = doc["migration"]
    entity = doc.get("entity")
    return {
        "code": doc["code"],
        "message": doc["message"],
        "status": doc["status"],
        "operation": doc.get("operation"),
        "migration": {
            "id": m["id"],
            "version_date": m["version_date"],
            "account_id": m["account_id"],
            "phase_id": m.get("phase_id"),
        },
        "entity": None
        if entity is None
        else {"account_id": entity["account_id"], "customer_id": entity["customer_id"]},
        "event_type": "customer_outgoing",
    }


def decoded_audit(records: list[Any]) -> list[dict[str, Any]]:
    out = []
    for rec in records:
        schema, datum = decode_single_object(rec.value)
        assert schema.name.endswith("MigrationAudit"), schema.name
        assert rec.key == datum["migration"]["id"].encode()
        out.append(datum)
    return out


def headers_of(rec: Any) -> dict[str, bytes]:
    return dict(rec.headers)


def publish(d: Deployment, records: list[Generated]) -> None:
    produce(d.settings, "pismo.raw", [(g.key, g.value, []) for g in records])


def stage_done(d: Deployment) -> bool:
    """The exactly-once stage's committed offsets reached the end of every raw partition."""
    s = d.settings
    topic = s.topic("pismo.raw")

    async def go() -> bool:
        consumer = AIOKafkaConsumer(**s.kafka_client_options(), group_id=f"{s.app_id}-pismo-eos")
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(await partition_count(s, topic))]
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                if ends[tp] and (await consumer.committed(tp) or 0) < ends[tp]:
                    return False
            return True
        finally:
            await consumer.stop()

    return asyncio.run(go())


def phase_counts(w: Worker) -> dict[str, Any] | None:
    answer = w.get(PHASES_PATH).json()
    if not answer["complete"]:
        return None
    return {phase: state["by_operation"] for phase, state in answer["phases"].items()}


# ---- 1. the whole path -----------------------------------------------------------------------------------------
def test_generated_traffic_gives_one_audit_record_per_distinct_valid_event(deployment: Deployment) -> None:
    records = generate(random.Random(20220117), 2000, invalid_ratio=0.1, duplicate_ratio=0.05)
    expected = Expected.of(records)
    s = deployment.settings
    w = deployment.worker().start()
    publish(deployment, records)
    wait_until(
        lambda: stage_done(deployment), timeout=90, interval=1, what="stage one to commit every record"
    )

    audits = decoded_audit(read_all(s, "audit.migration", "read_committed"))
    by_sha = Counter(a["original_sha256"] for a in audits)
    assert not [sha for sha, n in by_sha.items() if n > 1], "an event was audited twice"
    assert set(by_sha) == set(expected.firsts)
    assert len(audits) == len(expected.firsts)
    assert len({a["audit_id"] for a in audits}) == len(audits)
    for a in audits:
        doc = json.loads(expected.firsts[a["original_sha256"]].value)
        assert {k: a[k] for k in audit_fields(doc)} == audit_fields(doc)
        assert a["source"]["topic"] == deployment.topic("pismo.raw")

    dead = read_all(s, "pismo.deadletter", "read_committed")
    assert Counter((r.key, r.value) for r in dead) == Counter((g.key, g.value) for g in expected.invalid)
    want = {(g.key, g.value): g for g in expected.invalid}
    for rec in dead:
        g, h = want[(rec.key, rec.value)], headers_of(rec)
        assert h[dl.CODE].decode() == g.expected_code, g.label
        assert h[dl.PATH].decode() == EXPECTED_PATH[g.label], g.label
        assert h[dl.SOURCE_TOPIC] == deployment.topic("pismo.raw").encode()

    failures = [json.loads(r.value) for r in read_all(s, "pismo.migration-failures", "read_committed")]
    assert Counter(f["original_sha256"] for f in failures) == Counter(expected.failures)
    assert all(f["status"] == "FAIL" for f in failures)

    reference = reference_phase_counts(records)
    assert {"none", "~"} <= set(reference), "a phase named 'none' and results without a phase, kept apart"
    assert wait_until(lambda: phase_counts(w) == reference, timeout=30, what="the phases table") is True
    for phase, counts in reference.items():
        one = w.get(PHASE_PATH.format(phase_key=phase)).json()
        assert one["phase_id"] == (None if phase == "~" else phase)
        assert one["by_operation"] == counts
        assert one["total"] == sum(n for per_status in counts.values() for n in per_status.values())
        assert "high_water" not in one
    assert w.get(PHASE_PATH.format(phase_key="Rollout_Never")).status_code == 404

    assert w.metric("switchyard_events_in_total", domain="pismo") == len(records)
    assert w.metric("switchyard_events_accepted_total", domain="pismo") == len(expected.firsts)
    assert w.metric("switchyard_events_rejected_total", domain="pismo") == len(expected.invalid)
    assert w.metric("switchyard_outputs_total", topic="audit.migration") == len(expected.firsts)
    assert w.metric("switchyard_end_to_end_lag_seconds_count", domain="pismo") == len(expected.firsts)
    assert w.metric("switchyard_transactions_total", domain="pismo", outcome="commit") >= 1
    assert w.metric("switchyard_transactions_total", domain="pismo", outcome="abort") == 0


def test_with_a_schema_registry_the_audit_is_in_confluent_wire_format(deployment: Deployment) -> None:
    """A reader that knows only the registry finds the writer schema by the id in each record's header."""
    records = [g for g in generate(random.Random(7), 60, invalid_ratio=0.0, duplicate_ratio=0.0)]
    expected = Expected.of(records)
    with TestRegistry() as registry:
        w = deployment.worker(SWITCHYARD_SCHEMA_REGISTRY_URL=registry.url).start()
        publish(deployment, records)
        wait_until(lambda: stage_done(deployment), timeout=90, interval=1, what="stage one to commit")
        audits = read_all(deployment.settings, "audit.migration", "read_committed")
        schemas = {i: schema_from_json(json.loads(text)) for text, i in registry.ids.items()}
        subjects = dict(registry.subjects)
    assert subjects == {f"{deployment.topic('audit.migration')}-value": [1]}
    assert len(audits) == len(expected.firsts)
    decoded = [decode_confluent(rec.value, schemas) for rec in audits]
    assert {schema_id for schema_id, _ in decoded} == {1}
    assert {datum["original_sha256"] for _, datum in decoded} == set(expected.firsts)
    assert w.proc is not None and w.proc.poll() is None


# ---- 2. crashes ------------------------------------------------------------------------------------------------
def crash_run(d: Deployment, *, events: int, kills: int, seed: int) -> None:
    """Publish ``events`` in ``kills + 1`` chunks; while each of the first ``kills`` chunks is being processed,
    SIGKILL the worker after a random number of committed records and start a new one."""
    rng = random.Random(seed)
    records = generate(rng, events, invalid_ratio=0.1, duplicate_ratio=0.05)
    expected = Expected.of(records)
    s = d.settings
    chunk = -(-events // (kills + 1))
    w = d.worker().start()
    killed_in_flight = 0
    for i in range(kills):
        part = records[i * chunk : (i + 1) * chunk]
        publish(d, part)
        at = rng.randint(len(part) // 20, len(part) // 2)
        wait_until(
            lambda w=w, at=at: w.metric("switchyard_events_in_total", domain="pismo") >= at,
            timeout=60,
            what=f"{at} committed records before kill {i + 1}",
        )
        w.kill()
        killed_in_flight += not stage_done(d)
        w = d.worker().start()
    publish(d, records[kills * chunk :])
    wait_until(lambda: stage_done(d), timeout=120, interval=1, what="stage one to commit every record")

    audits = decoded_audit(read_all(s, "audit.migration", "read_committed"))
    by_sha = Counter(a["original_sha256"] for a in audits)
    duplicates = sum(n - 1 for n in by_sha.values())
    missing = len(set(expected.firsts) - set(by_sha))
    unexpected = len(set(by_sha) - set(expected.firsts))
    uncommitted = len(read_all(s, "audit.migration", "read_uncommitted")) - len(audits)
    dead = read_all(s, "pismo.deadletter", "read_committed")
    print(
        f"\npismo crash test: events={events} distinct_valid={len(expected.firsts)} "
        f"invalid={len(expected.invalid)} kills={kills} kills_with_work_in_flight={killed_in_flight} "
        f"audit_read_committed={len(audits)} duplicates_seen={duplicates} missing={missing} "
        f"unexpected={unexpected} aborted_audit_writes_visible_to_read_uncommitted={uncommitted} "
        f"dead_letters={len(dead)}"
    )
    assert (duplicates, missing, unexpected) == (0, 0, 0)
    assert Counter((r.key, r.value) for r in dead) == Counter((g.key, g.value) for g in expected.invalid)
    reference = reference_phase_counts(records)
    assert wait_until(lambda: phase_counts(w) == reference, timeout=60, what="the phases table") is True


def test_sigkilled_workers_never_duplicate_or_lose_an_audit_record(deployment: Deployment) -> None:
    crash_run(deployment, events=5000, kills=3, seed=4)


@pytest.mark.slow
def test_many_sigkills_under_a_longer_stream(deployment: Deployment) -> None:
    crash_run(deployment, events=20000, kills=8, seed=8)


# ---- 3. the offline check ----------------------------------------------------------------------------------
@pytest.fixture
def offline(tmp_path: Path) -> Deployment:
    """``switchyard check`` needs no broker: the bootstrap address is never dialled."""
    return Deployment("127.0.0.1:9", "psmcheck", tmp_path)


def test_check_prints_the_audit_record_and_exits_0(offline: Deployment) -> None:
    sample = SAMPLES_DIR / "pismo" / "fail-creation.json"
    done = offline.cli("check", "pismo", str(sample), "--now", "2022-01-17T12:00:00Z", check=False)
    assert done.returncode == 0, done.stderr
    audit = json.loads(done.stdout)
    body = sample.read_bytes()
    assert {k: audit[k] for k in audit_fields(json.loads(body))} == audit_fields(json.loads(body))
    assert audit["original_sha256"] == hashlib.sha256(body).hexdigest()
    assert audit["received_at"].startswith("2022-01-17T12:00:00")
    assert audit["audit_id"] == str(uuid.UUID(audit["audit_id"]))


def test_check_prints_the_error_and_exits_1_without_quoting_the_value(
    offline: Deployment, tmp_path: Path
) -> None:
    doc = json.loads((SAMPLES_DIR / "pismo" / "fail-creation.json").read_bytes())
    doc["status"] = "SECRET-STATUS-4711"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    done = offline.cli("check", "pismo", str(bad), check=False)
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert set(error) == {"stage", "code", "message", "path"}
    assert (error["stage"], error["code"], error["path"]) == ("validate", "SCHEMA-ENUM", "/status")
    assert "SECRET-STATUS-4711" not in done.stdout.decode()

    truncated = offline.cli("check", "pismo", "-", input=b'{"status": "SUC', check=False)
    assert truncated.returncode == 1
    assert json.loads(truncated.stdout)["code"] == "DECODE-JSON"


def test_produce_publishes_a_sample_untouched_keyed_by_its_migration(deployment: Deployment) -> None:
    sample = SAMPLES_DIR / "pismo" / "success-update.json"
    deployment.cli("produce", "pismo", str(sample))
    [record] = read_all(deployment.settings, "pismo.raw")
    assert record.value == sample.read_bytes()
    assert record.key == json.loads(sample.read_bytes())["migration"]["id"].encode()
