"""Lära on a real broker: every error code dead-lettered, and a generated history folded by a real worker.

The history's reference (``generate.reference_timelines`` / ``reference_compliance``) is the generator's own
ground truth, written alongside the records rather than replayed through the folds, so agreement means the
worker's dedupe, routing across the three feed topics (re-keyed from member to cycle and back), the tables, the
snapshots and the HTTP answers together do what the pure folds promise.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from app.core import deadletter as dl
from app.core.records import EVENT_TYPE_HEADER, content_event_id
from app.domains.lara.generate import (
    ACCEPT,
    GeneratedRecord,
    History,
    invalid_variants,
    member_history,
    reference_compliance,
    reference_timelines,
)
from app.domains.lara.views import COMPLIANCE_PATH, TIMELINE_PATH
from app.paths import SAMPLES_DIR
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 3
SEED_CODES = {f"LARA-{n}" for n in range(1000, 1011)}
LARA_CODES = SEED_CODES | {"LARA-UNKNOWN-TYPE"}


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        f"lara{uuid.uuid4().hex[:10]}",
        tmp_path,
        SWITCHYARD_DOMAINS="lara",
        SWITCHYARD_TOPIC_PARTITIONS=str(PARTITIONS),
    )
    yield d
    d.stop_all()


def headers_for(event_type: str | None) -> list[tuple[str, bytes]]:
    return [(EVENT_TYPE_HEADER, event_type.encode())] if event_type is not None else []


def publish(d: Deployment, records: list[GeneratedRecord]) -> None:
    produce(d.settings, "lara.raw", [(r.key, r.value, list(r.headers)) for r in records])


def member_path(template: str, key: str) -> str:
    """Member keys are Lära ids (``/``, ``+``, ``%`` included): one percent-encoded path segment."""
    return template.format(id=quote(key, safe=""))


def latest_per_key(d: Deployment, topic: str) -> dict[str, Any]:
    """The last value of every key; a key whose last record is a tombstone is gone."""
    latest = {r.key.decode(): json.loads(r.value) if r.value else None for r in read_all(d.settings, topic)}
    return {k: v for k, v in latest.items() if v is not None}


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Keys whose value differs (or is missing or extra): short, so a timeout message stays readable."""
    return sorted(k for k in expected.keys() | actual.keys() if actual.get(k) != expected.get(k))


# ---- dead letters ------------------------------------------------------------------------------------------


def one_variant_per_code() -> dict[str, tuple[str, str | None, bytes, str]]:
    chosen: dict[str, tuple[str, str | None, bytes, str]] = {}
    for variant in invalid_variants(random.Random(11)):
        chosen.setdefault(variant[3], variant)
    return chosen


def test_every_error_code_reaches_the_dead_letters_with_its_code(deployment: Deployment) -> None:
    variants = one_variant_per_code()
    assert set(variants) >= LARA_CODES
    w = deployment.worker().start()
    sent = [(f"k-{code}".encode(), value, headers_for(t)) for code, (_, t, value, _) in variants.items()]
    produce(deployment.settings, "lara.raw", sent)

    dead = wait_until(
        lambda: len(recs := read_all(deployment.settings, "lara.deadletter")) >= len(variants) and recs,
        what=f"{len(variants)} dead letters",
    )
    assert len(dead) == len(variants)
    by_key = {rec.key.decode().removeprefix("k-"): rec for rec in dead}
    assert set(by_key) == set(variants)
    for code, (label, event_type, value, _) in variants.items():
        rec = by_key[code]
        headers = dict(rec.headers)
        assert headers[dl.CODE].decode() == code, label
        assert rec.value == value, label  # untouched bytes
        assert headers.get(EVENT_TYPE_HEADER) == (event_type.encode() if event_type else None), label
        assert headers[dl.SOURCE_TOPIC] == deployment.topic("lara.raw").encode()
        assert headers[dl.STAGE] in (b"decode", b"validate"), label
    assert dict(by_key["LARA-1002"].headers)[dl.PATH] == b"/memberId"
    assert dict(by_key["LARA-1010"].headers)[dl.PATH].endswith(b"/endDate")
    wait_until(
        lambda: w.metric("switchyard_events_rejected_total", domain="lara") == len(variants),
        what="rejected metric",
    )
    assert w.metric("switchyard_events_rejected_total", domain="lara", error_code="LARA-1010") == 1
    for feed in ("lara.identities.feed", "lara.statuses.feed", "lara.cycles.feed"):
        assert read_all(deployment.settings, feed) == []


# ---- the generated history ---------------------------------------------------------------------------------


def expected_dedupe_hits(records: list[GeneratedRecord]) -> int:
    """Accepted records whose type and body were seen before: stage one drops them before any output."""
    accepted = [r for r in records if r.expect == ACCEPT]
    assert all(r.event_type is not None for r in accepted)
    ids = {content_event_id(str(r.event_type), json.loads(r.value)) for r in accepted}
    return len(accepted) - len(ids)


def wrong_timelines(w: Worker, history: History) -> list[str]:
    """Members whose timeline answer differs from the reference (concurrent ranges included)."""
    reference = reference_timelines(history)
    wrong = []
    for key, entries in reference.items():
        r = w.get(member_path(TIMELINE_PATH, key))
        body = r.json() if r.status_code == 200 else None
        if body is None or body["memberKey"] != key or body["entries"] != entries:
            wrong.append(key)
    return wrong


def wrong_compliance(w: Worker, expected: dict[str, Any]) -> list[str]:
    return [
        key
        for key, want in expected.items()
        if (r := w.get(member_path(COMPLIANCE_PATH, key))).status_code != 200 or r.json() != want
    ]


def test_1000_status_changes_for_100_members_fold_to_the_reference(deployment: Deployment) -> None:
    # The worker renders "now" from its own clock: the history is written up to a day before the real now, and
    # its only boundaries after it are period ends years away, so the reference at ``now`` holds while the
    # test runs.
    now = datetime.now(UTC)
    history = member_history(random.Random(7), now=now, members=100, changes=1000)
    records = history.records
    concurrent = sum(1 for r in records if r.label == "concurrent-change")
    assert concurrent > 0 and any(r.redelivery for r in records) and any(r.expect != ACCEPT for r in records)
    assert any(k.startswith("numero_membre:") for k in history.truth.timelines)
    assert any("/" in k or "%" in k for k in history.truth.timelines)  # keys that need path encoding
    compliance = reference_compliance(history)
    assert any(c["cycles"] for c in compliance.values())

    w = deployment.worker().start()
    publish(deployment, records)
    wait_until(
        lambda: w.metric("switchyard_events_in_total", domain="lara") >= len(records),
        timeout=120,
        interval=1.0,
        what=f"{len(records)} raw records consumed",
    )
    wait_until(
        lambda: not differences(latest_per_key(deployment, "lara.compliance"), compliance),
        timeout=120,
        interval=1.0,
        what="lara.compliance snapshots equal to the reference",
    )
    assert wrong_timelines(w, history) == []
    assert wrong_compliance(w, compliance) == []
    # members known by custom field: linked ones joined their user, the others are visible and counted
    assert {c["identity"] for c in compliance.values()} == {"user", "unresolved"}
    for outcome in ("linked", "unresolved"):
        assert w.metric("switchyard_table_updates_total", table="lara.identities", outcome=outcome) > 0, (
            outcome
        )
    for template in (TIMELINE_PATH, COMPLIANCE_PATH):
        assert w.get(member_path(template, "numero_membre:nobody")).status_code == 404

    invalid = Counter((r.value, r.expect) for r in records if r.expect != ACCEPT)
    dead = read_all(deployment.settings, "lara.deadletter")
    assert Counter((rec.value, dict(rec.headers)[dl.CODE].decode()) for rec in dead) == invalid
    assert w.metric("switchyard_dedupe_hits_total", domain="lara") == expected_dedupe_hits(records)


def feed_partitions(w: Worker, deployment: Deployment) -> frozenset[int]:
    """Partitions of the compliance table's feed that ``w`` consumes (standbys only replicate changelogs)."""
    topic = deployment.topic("lara.compliance.feed")
    return frozenset(
        int(dict(labels)["partition"])
        for (name, labels), _ in w.metrics().items()
        if name == "switchyard_consumer_lag_records" and dict(labels).get("topic") == topic
    )


def test_two_workers_answer_every_member_alike_whichever_owns_it(deployment: Deployment) -> None:
    """Member keys hold ``/``, ``+`` and ``%``: the owner's router must proxy them without decoding twice."""
    history = member_history(random.Random(3), now=datetime.now(UTC), members=40, changes=300)
    compliance = reference_compliance(history)
    a = deployment.worker().start()
    b = deployment.worker().start()
    publish(deployment, history.records)
    wait_until(
        lambda: not differences(latest_per_key(deployment, "lara.compliance"), compliance),
        timeout=120,
        interval=1.0,
        what="lara.compliance snapshots equal to the reference",
    )
    owned = wait_until(
        lambda: all(held := [feed_partitions(w, deployment) for w in (a, b)]) and held,
        timeout=30,
        what="both workers reporting their compliance partitions",
    )
    assert owned[0].isdisjoint(owned[1])  # each answers the other's members by proxying to it
    for w in (a, b):
        assert wrong_compliance(w, compliance) == []
        assert wrong_timelines(w, history) == []


# ---- the offline check -------------------------------------------------------------------------------------


@pytest.fixture
def offline(tmp_path: Path) -> Deployment:
    """``switchyard check`` needs no broker: the bootstrap address is never dialled."""
    return Deployment("127.0.0.1:9", "laracheck", tmp_path)


@pytest.mark.parametrize("code", sorted(LARA_CODES))
def test_check_prints_the_lara_code_and_exits_1(offline: Deployment, code: str) -> None:
    label, event_type, value, _ = one_variant_per_code()[code]
    args = ["--type", event_type] if event_type is not None else []
    done = offline.cli("check", "lara", *args, "-", input=value, check=False)
    assert done.returncode == 1, (label, done.stderr)
    error = json.loads(done.stdout)
    assert set(error) == {"stage", "code", "message", "path"}
    assert error["code"] == code, label


def test_check_accepts_a_seed_sample_and_never_quotes_a_refused_value(offline: Deployment) -> None:
    sample = SAMPLES_DIR / "lara" / "member_status_change--changecurrentmemberstatus.json"
    done = offline.cli("check", "lara", "--type", "member_status_change", str(sample), check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["type"] == "member_status_change"

    doc = json.loads((SAMPLES_DIR / "lara" / "user_progress--getuserprogress.json").read_bytes())
    doc["memberId"] = "jean.tremblay@ordre.qc.ca"
    refused = offline.cli(
        "check", "lara", "--type", "user_progress", "-", input=json.dumps(doc).encode(), check=False
    )
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["code"] == "LARA-1003"
    assert b"jean" not in refused.stdout
