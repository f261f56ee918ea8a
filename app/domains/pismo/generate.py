"""Deterministic Pismo traffic for integration tests and the benchmark.

Everything is drawn from the ``random.Random`` passed in, so a seed reproduces a stream byte for byte. A
stream mixes realistic results (about 0.5 KB each, several phases, SUCCESS mostly with the Pismo entity, FAIL
mostly without, one phase literally named "none"), invalid records each labelled with the error code ``process`` must raise, and duplicates (the
same bytes again, and the same content re-serialised) that stage one's dedupe must absorb.
:func:`reference_phase_counts` computes what the ``phases`` table must hold, independently of the rules.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.core.avro import decode_single_object
from app.core.records import RawRecord
from app.core.traffic import Observed, Oracle, Traffic, TrafficRecord, TrafficSource, Verdict, wrong_answers
from app.domains.pismo.rules import AUDIT_TOPIC
from app.domains.pismo.views import PHASE_PATH

PHASES: tuple[str | None, ...] = (
    "Rollout_Jan2022",
    "Rollout_Feb2022",
    "Pilot_Q4_2021",
    "Wave_3_Cards",
    "none",
    None,
)
_SUCCESS = (
    ("MIGR-0001", "Customer migration registration approved"),
    ("MIGR-0003", "Customer migration registration approved with address normalisation"),
)
_FAIL = (
    ("MIGR-0002", "Customer migration registration rejected: document number already registered"),
    ("MIGR-0004", "Customer migration registration rejected: account holder date of birth is missing"),
    ("MIGR-0005", "Customer migration registration rejected: program id not found for this organisation"),
)
_OPERATIONS = ("CREATION", "UPDATE")
_EPOCH = datetime(2021, 8, 1, tzinfo=UTC)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _version_date(rng: random.Random) -> str:
    when = _EPOCH + timedelta(seconds=rng.randrange(0, 200 * 24 * 3600), milliseconds=rng.randrange(1000))
    style = rng.randrange(3)
    if style == 0:
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if style == 1:
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (when - timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S") + "-03:00"


def valid_event(rng: random.Random) -> dict[str, Any]:
    """A customer_outgoing v1 result as Pismo would send it."""
    failed = rng.random() < 0.2
    code, message = rng.choice(_FAIL if failed else _SUCCESS)
    account = f"ACC-{rng.randrange(10**8):08d}"
    phase = rng.choice(PHASES)
    migration: dict[str, Any] = {"id": _uuid(rng), "account_id": account, "version_date": _version_date(rng)}
    if phase is not None:
        migration["phase_id"] = phase
    doc: dict[str, Any] = {
        "status": "FAIL" if failed else "SUCCESS",
        "code": code,
        "message": f"{message} (account {account}, batch {_uuid(rng)}, source system core-banking-legacy)",
        "migration": migration,
    }
    if rng.random() < 0.9:
        doc["operation"] = rng.choice(_OPERATIONS)
    if not failed or rng.random() < 0.1:
        doc["entity"] = {"account_id": rng.randrange(1, 10**9), "customer_id": rng.randrange(1, 10**9)}
    return doc


def serialise(doc: Any, rng: random.Random) -> bytes:
    """Publishers differ: some pretty-print, some send compact JSON. The bytes differ, the event does not."""
    if rng.random() < 0.5:
        return orjson.dumps(doc, option=orjson.OPT_INDENT_2)
    return orjson.dumps(doc)


def _key(doc: Any) -> bytes | None:
    mid = doc.get("migration", {}).get("id") if isinstance(doc, dict) else None
    return mid.encode() if isinstance(mid, str) else None


Mutation = Callable[[dict[str, Any], random.Random], "bytes | dict[str, Any]"]


def _drop(*path: str) -> Mutation:
    def mutate(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        node = doc
        for p in path[:-1]:
            node = node.setdefault(p, {"account_id": 1, "customer_id": 2})
        node.pop(path[-1], None)
        return doc

    return mutate


def _put(value: Any, *path: str) -> Mutation:
    def mutate(doc: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        node = doc
        for p in path[:-1]:
            node = node.setdefault(p, {"account_id": 1, "customer_id": 2})
        node[path[-1]] = value
        return doc

    return mutate


INVALID_VARIANTS: dict[str, tuple[str, Mutation]] = {
    "missing-code": ("SCHEMA-REQUIRED", _drop("code")),
    "missing-message": ("SCHEMA-REQUIRED", _drop("message")),
    "missing-status": ("SCHEMA-REQUIRED", _drop("status")),
    "missing-migration": ("SCHEMA-REQUIRED", _drop("migration")),
    "missing-migration-id": ("SCHEMA-REQUIRED", _drop("migration", "id")),
    "missing-version-date": ("SCHEMA-REQUIRED", _drop("migration", "version_date")),
    "missing-migration-account": ("SCHEMA-REQUIRED", _drop("migration", "account_id")),
    "missing-entity-customer": ("SCHEMA-REQUIRED", _drop("entity", "customer_id")),
    "status-unknown": ("SCHEMA-ENUM", _put("PENDING", "status")),
    "operation-unknown": ("SCHEMA-ENUM", _put("DELETION", "operation")),
    "extra-top": ("SCHEMA-ADDITIONAL-PROPERTY", _put("2022-01-01", "migrated_at")),
    "extra-migration": ("SCHEMA-ADDITIONAL-PROPERTY", _put("BR", "migration", "country")),
    "extra-entity": ("SCHEMA-ADDITIONAL-PROPERTY", _put(7, "entity", "program_id")),
    "entity-id-string": ("SCHEMA-TYPE", _put("9999", "entity", "account_id")),
    "entity-id-bool": ("SCHEMA-TYPE", _put(True, "entity", "customer_id")),
    "entity-id-fraction": ("SCHEMA-TYPE", _put(12.5, "entity", "account_id")),
    "phase-null": ("SCHEMA-TYPE", _put(None, "migration", "phase_id")),
    "migration-id-number": ("SCHEMA-TYPE", _put(42, "migration", "id")),
    "date-no-offset": ("SCHEMA-FORMAT", _put("2021-08-11T11:25:00.000", "migration", "version_date")),
    "date-impossible": ("SCHEMA-FORMAT", _put("2021-02-29T11:25:00Z", "migration", "version_date")),
    "date-space": ("SCHEMA-FORMAT", _put("2021-08-11 11:25:00Z", "migration", "version_date")),
    "entity-id-over-long": ("ENRICH-OUT-OF-RANGE", _put(2**63, "entity", "account_id")),
    "truncated-json": ("DECODE-JSON", lambda doc, rng: orjson.dumps(doc)[: rng.randrange(1, 60)]),
    "empty": ("DECODE-EMPTY", lambda doc, rng: b""),
    "top-level-array": ("DECODE-NOT-OBJECT", lambda doc, rng: orjson.dumps([doc])),
    "latin-1": (
        "DECODE-UTF8",
        lambda doc, rng: json.dumps({**doc, "message": "Migração"}, ensure_ascii=False).encode("latin-1"),
    ),
}


def invalid_record(rng: random.Random) -> TrafficRecord:
    label = rng.choice(sorted(INVALID_VARIANTS))
    code, mutate = INVALID_VARIANTS[label]
    doc = valid_event(rng)
    key = _key(doc)
    out = mutate(doc, rng)
    value = out if isinstance(out, bytes) else serialise(out, rng)
    return TrafficRecord.rejected(value, key, code, label=label)


def generate(
    rng: random.Random, n: int, *, invalid_ratio: float = 0.1, duplicate_ratio: float = 0.05
) -> list[TrafficRecord]:
    """``n`` records: about ``invalid_ratio`` invalid, about ``duplicate_ratio`` repeats of earlier valid ones
    (half the same bytes, half the same content re-serialised)."""
    out: list[TrafficRecord] = []
    valid: list[TrafficRecord] = []
    for _ in range(n):
        roll = rng.random()
        if roll < invalid_ratio:
            out.append(invalid_record(rng))
        elif roll < invalid_ratio + duplicate_ratio and valid:
            original = rng.choice(valid)
            if rng.random() < 0.5:
                out.append(TrafficRecord(original.value, original.key, label="duplicate"))
            else:
                body = original.value or b""
                shuffled = dict(sorted(orjson.loads(body).items(), reverse=True))
                value = orjson.dumps(shuffled, option=0 if body.startswith(b"{\n") else orjson.OPT_INDENT_2)
                out.append(TrafficRecord(value, original.key, label="reformatted-duplicate"))
        else:
            doc = valid_event(rng)
            record = TrafficRecord(serialise(doc, rng), _key(doc), label="valid")
            valid.append(record)
            out.append(record)
    return out


def as_raw_records(
    records: Iterable[TrafficRecord],
    *,
    topic: str = "pismo.raw",
    partitions: int = 6,
    start_ms: int = 1_767_225_600_000,
) -> list[RawRecord]:
    """Place records as a producer keyed by ``migration.id`` would: offsets per partition, rising times."""
    next_offset = [0] * partitions
    out: list[RawRecord] = []
    for i, g in enumerate(records):
        partition = zlib.crc32(g.key) % partitions if g.key is not None else i % partitions
        out.append(RawRecord(g.value, g.key, (), topic, partition, next_offset[partition], start_ms + i))
        next_offset[partition] += 1
    return out


def reference_phase_counts(records: Iterable[TrafficRecord]) -> dict[str, dict[str, dict[str, int]]]:
    """What the ``phases`` table must count: each distinct valid event once, by phase, operation and status.

    Written from the generator's own labels and the standard-library JSON parser, not from the rules, so it
    can disagree with them.
    """
    seen: set[str] = set()
    counts: dict[str, dict[str, dict[str, int]]] = {}
    for g in records:
        if g.code is not None:
            continue
        doc = json.loads(g.value or b"")
        identity = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        if identity in seen:
            continue
        seen.add(identity)
        # The table's key, as topics/catalog.yaml states it: "~" without a phase, a leading "~" doubled.
        phase_id = doc["migration"].get("phase_id")
        phase = "~" if phase_id is None else "~" + phase_id if phase_id.startswith("~") else phase_id
        per_phase = counts.setdefault(
            phase, {op: {"SUCCESS": 0, "FAIL": 0} for op in ("CREATION", "UPDATE", "NONE")}
        )
        per_phase[doc.get("operation", "NONE")][doc["status"]] += 1
    return counts


# ---- the traffic protocol (app.core.traffic) -------------------------------------------------------------------
def first_deliveries(records: Iterable[TrafficRecord]) -> dict[str, TrafficRecord]:
    """The first delivery of every distinct valid event (what the audit must hold), by sha256 of its bytes."""
    seen: set[str] = set()
    firsts: dict[str, TrafficRecord] = {}
    for g in records:
        if g.code is not None or g.value is None:
            continue
        identity = json.dumps(json.loads(g.value), sort_keys=True, separators=(",", ":"))
        if identity not in seen:
            seen.add(identity)
            firsts[hashlib.sha256(g.value).hexdigest()] = g
    return firsts


def _oracle(records: list[TrafficRecord]) -> Oracle:
    def judge(_: Sequence[TrafficRecord], seen: Observed, verdict: Verdict) -> None:
        firsts = first_deliveries(records)
        verdict.expected = len(firsts)
        audits = Counter(
            decode_single_object(r.value or b"")[1]["original_sha256"] for r in seen.read(AUDIT_TOPIC)
        )
        verdict.processed = sum(audits.values())
        verdict.compare(AUDIT_TOPIC, Counter(dict.fromkeys(firsts, 1)), audits)
        # One phase at a time: that query is routed to the phase's owner, where the list answers only for the
        # partitions the asked worker holds.
        answers = [(PHASE_PATH.format(phase_key=p), c) for p, c in reference_phase_counts(records).items()]
        verdict.wrong("pismo phases table", wrong_answers(seen, answers, lambda body: body["by_operation"]))

    return judge


def _traffic(rng: random.Random, n: int, now: datetime) -> Traffic:
    records = generate(rng, n)
    return Traffic(records, _oracle(records))


TRAFFIC = TrafficSource(
    _traffic,
    lambda rng: [(None, valid_event(rng)) for _ in range(8)],
    "Pismo migration results (~0.5 KB), exactly-once stage one to the Avro audit + phases fold",
    (AUDIT_TOPIC,),
    bench_records=(2500, 10000),
)
