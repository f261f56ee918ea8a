"""Phoenix on a real broker: generated bus traffic through real workers, checked against a batch reference.

The reference (``generate.reference_progress`` / ``reference_coach_activity``) is computed from the raw bytes
independently of the folds, so agreement means the worker's dedupe, routing, tables, snapshots and HTTP answers
together do what the pure folds promise, despite redeliveries, reordering, cancellations and broken records.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.partitioner import DefaultPartitioner

from app.core import deadletter as dl
from app.domains.phoenix.generate import (
    ACCEPT,
    UNHANDLED,
    GeneratedRecord,
    reference_coach_activity,
    reference_progress,
    session_stream,
)
from app.domains.phoenix.views import COACH_WEEKS_PATH, TALENT_PROGRESS_PATH
from app.paths import SAMPLES_DIR
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

PARTITIONS = 3
# A SIGKILLed worker is only evicted from the group when its session times out; the default (60 s) would make
# the fail-over test mostly waiting. Faust reads these from the environment.
FAST_FAILOVER = {"SWITCHYARD_SESSION_TIMEOUT_SECONDS": "10", "SWITCHYARD_HEARTBEAT_INTERVAL_SECONDS": "1"}


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        f"phx{uuid.uuid4().hex[:10]}",
        tmp_path,
        SWITCHYARD_DOMAINS="phoenix",
        SWITCHYARD_TOPIC_PARTITIONS=str(PARTITIONS),
        **FAST_FAILOVER,
    )
    yield d
    d.stop_all()


def talent_path(talent_id: str) -> str:
    return TALENT_PROGRESS_PATH.format(talentId=talent_id)


def coach_path(coach_id: str) -> str:
    return COACH_WEEKS_PATH.format(coachId=coach_id)


def publish(d: Deployment, records: list[GeneratedRecord]) -> None:
    produce(d.settings, "phoenix.raw", [(r.key, r.value, []) for r in records])


def latest_per_key(d: Deployment, topic: str) -> dict[str, Any]:
    return {r.key.decode(): json.loads(r.value) for r in read_all(d.settings, topic)}


def differences(actual: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Keys whose value differs (or is missing/extra): short, so a timeout message stays readable."""
    return sorted(k for k in expected.keys() | actual.keys() if actual.get(k) != expected.get(k))


def snapshots_match(d: Deployment, topic: str, expected: dict[str, Any]) -> bool:
    return not differences(latest_per_key(d, topic), expected)


def snapshot_report(d: Deployment, *expectations: tuple[str, dict[str, Any]]) -> Callable[[], str]:
    """For ``wait_until(explain=...)``: per topic, how many keys differ and the first few, with one example."""

    def explain() -> str:
        parts = []
        for topic, expected in expectations:
            actual = latest_per_key(d, topic)
            diff = differences(actual, expected)
            if diff:
                k = diff[0]
                parts.append(
                    f"{topic}: {len(diff)} of {len(expected)} keys differ, first {diff[:3]}; "
                    f"{k} is {actual.get(k)!r}, expected {expected.get(k)!r}"
                )
        return " | ".join(parts) or "no difference on the last read"

    return explain


def wrong_answers(w: Worker, progress: dict[str, Any], coaches: dict[str, Any]) -> list[str]:
    """The ids ``w`` answers differently from the reference (connection failures count as wrong)."""
    wrong = []
    for path, want in [(talent_path(t), v) for t, v in progress.items()] + [
        (coach_path(c), v) for c, v in coaches.items()
    ]:
        try:
            r = w.get(path)
        except Exception:  # the proxied owner may be gone mid-failover: just not answered yet
            wrong.append(path)
            continue
        if r.status_code != 200 or r.json() != want:
            wrong.append(path)
    return wrong


def wait_for_stage_one(w: Worker, count: int, timeout: float) -> None:
    wait_until(
        lambda: w.metric("switchyard_events_in_total", domain="phoenix") >= count,
        timeout=timeout,
        interval=1.0,
        what=f"{count} raw records consumed",
    )


def stream(seed: int, **kw: Any) -> tuple[list[GeneratedRecord], dict[str, Any], dict[str, Any]]:
    records = session_stream(random.Random(seed), **kw)
    return records, reference_progress(records), reference_coach_activity(records)


def test_3000_sessions_fold_to_the_reference_in_snapshots_and_queries(deployment: Deployment) -> None:
    records, progress, coaches = stream(5, sessions=3000, talents=200, coaches=20)
    labels = Counter(r.expect for r in records)
    assert labels[UNHANDLED] and sum(labels.values()) - labels[ACCEPT] - labels[UNHANDLED] > 50
    assert any(r.redelivery for r in records) and len(coaches) == 20 and len(progress) > 190

    w = deployment.worker().start()
    publish(deployment, records)
    wait_for_stage_one(w, len(records), timeout=120)
    wait_until(
        lambda: snapshots_match(deployment, "phoenix.talent-progress", progress),
        timeout=120,
        interval=1.0,
        what="talent-progress snapshots equal to the reference",
        explain=snapshot_report(deployment, ("phoenix.talent-progress", progress)),
    )
    wait_until(
        lambda: snapshots_match(deployment, "phoenix.coach-activity", coaches),
        timeout=60,
        interval=1.0,
        what="coach-activity snapshots equal to the reference",
        explain=snapshot_report(deployment, ("phoenix.coach-activity", coaches)),
    )
    assert wrong_answers(w, progress, coaches) == []
    assert w.get(talent_path(str(uuid.uuid4()))).status_code == 404
    assert w.get(coach_path(str(uuid.uuid4()))).status_code == 404

    invalid = Counter((r.value, r.expect) for r in records if r.expect not in (ACCEPT, UNHANDLED))
    dead = read_all(deployment.settings, "phoenix.deadletter")
    assert Counter((rec.value, dict(rec.headers)[dl.CODE].decode()) for rec in dead) == invalid

    unhandled = {(r.key, r.value) for r in records if r.expect == UNHANDLED}
    passed_on = [(rec.key, rec.value) for rec in read_all(deployment.settings, "phoenix.unhandled")]
    assert sorted(passed_on) == sorted(unhandled)  # untouched, and once each despite redeliveries

    accepted = {r.value for r in records if r.expect == ACCEPT}
    enriched = read_all(deployment.settings, "phoenix.sessions.enriched")
    assert len(enriched) == len(accepted)  # a redelivery is deduped before any output
    # A snapshot topic gets each coach's last value per batch, not one per session folded (design note 12):
    # one per change would be nearly one per accepted session, as 20 coaches' every session changes them.
    assert len(read_all(deployment.settings, "phoenix.coach-activity")) < len(accepted) // 2
    assert w.metric("switchyard_dedupe_hits_total", domain="phoenix") == sum(
        1 for r in records if r.redelivery and r.expect in (ACCEPT, UNHANDLED)
    )


def test_queries_need_the_bearer_token_when_one_is_set(deployment: Deployment) -> None:
    token = "phoenix-query-token"
    w = deployment.worker(SWITCHYARD_API_TOKEN=token).start()
    sample = SAMPLES_DIR / "phoenix" / "vc-session-done.json"
    appointment = json.loads(sample.read_bytes())["eventData"]["appointment"]
    deployment.cli("produce", "phoenix", str(sample))  # the CLI path an operator would use

    auth = {"Authorization": f"Bearer {token}"}
    progress = wait_until(
        lambda: (
            (r := w.get(talent_path(appointment["talentId"]), headers=auth)).status_code == 200 and r.json()
        ),
        what="the sample's talent progress",
    )
    assert progress["sessionsDone"] == 1 and "appointments" not in progress
    coach = w.get(coach_path(appointment["coachId"]), headers=auth)
    assert coach.status_code == 200 and coach.json()["sessionsDone"] == 1

    for path in (talent_path(appointment["talentId"]), coach_path(appointment["coachId"])):
        assert w.get(path).status_code == 401
        assert w.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert w.get(path, headers={"Authorization": token}).status_code == 401
    assert w.get(talent_path(str(uuid.uuid4())), headers=auth).status_code == 404
    assert w.get("/health/live").status_code == 200  # health stays open for probes


def active_partitions(w: Worker, deployment: Deployment) -> frozenset[int]:
    """Partitions of the talent table's source topic ``w`` consumes (standbys are only changelog replicas)."""
    topic = deployment.topic("phoenix.sessions.enriched")
    return frozenset(
        int(dict(labels)["partition"])
        for (name, labels), _ in w.metrics().items()
        if name == "switchyard_consumer_lag_records" and dict(labels).get("topic") == topic
    )


def partition_of(key: str) -> int:
    everything = list(range(PARTITIONS))
    return int(DefaultPartitioner()(key.encode(), everything, everything))


FAILOVER_CASES = [
    # No standby replicas: the survivor holds none of the killed worker's rows, so a correct answer for one of
    # them before the kill proves the redirect, and after the kill proves a rebuild from the changelog.
    pytest.param(1200, 80, 8, "0", id="1200-sessions-no-standby"),
    # Production's shape: full stream, Faust's default of one standby (the survivor only replays the tail).
    pytest.param(3000, 200, 20, "1", id="3000-sessions-standby", marks=pytest.mark.slow),
    pytest.param(3000, 200, 20, "0", id="3000-sessions-no-standby", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("sessions", "talents", "coaches_n", "standbys"), FAILOVER_CASES)
def test_the_survivor_of_a_killed_worker_recovers_both_tables_and_answers_the_same(
    deployment: Deployment, sessions: int, talents: int, coaches_n: int, standbys: str
) -> None:
    records, progress, coaches = stream(11, sessions=sessions, talents=talents, coaches=coaches_n)
    a = deployment.worker(SWITCHYARD_STANDBY_REPLICAS=standbys).start()
    b = deployment.worker(SWITCHYARD_STANDBY_REPLICAS=standbys).start()
    publish(deployment, records)
    wait_until(
        lambda: (
            snapshots_match(deployment, "phoenix.talent-progress", progress)
            and snapshots_match(deployment, "phoenix.coach-activity", coaches)
        ),
        timeout=150,
        interval=1.0,
        what="both snapshot topics equal to the reference",
        explain=snapshot_report(
            deployment, ("phoenix.talent-progress", progress), ("phoenix.coach-activity", coaches)
        ),
    )

    def split() -> tuple[frozenset[int], frozenset[int]] | None:
        """Each worker's partitions, once they share the topic out: the lag gauges are refreshed every 5 s, so
        right after a rebalance one of them can still show the partitions it held before."""
        pa, pb = active_partitions(a, deployment), active_partitions(b, deployment)
        return (pa, pb) if pa and pb and pa.isdisjoint(pb) and pa | pb == set(range(PARTITIONS)) else None

    owned = wait_until(split, timeout=30, what="the two workers sharing the partitions out")
    foreign = [t for t in progress if partition_of(t) in owned[1]]
    assert foreign, "worker b owns some talents"
    for talent in foreign[:5]:  # a does not own these: its router proxies to b
        assert a.get(talent_path(talent)).json() == progress[talent]
    assert wrong_answers(a, progress, coaches) == []
    assert wrong_answers(b, progress, coaches) == []

    killed_at = time.monotonic()
    b.kill()
    wait_until(
        lambda: not wrong_answers(a, progress, coaches),
        timeout=120,
        interval=0.5,
        what="the survivor answering every query like the reference",
    )
    recovery = time.monotonic() - killed_at
    print(
        f"\nphoenix fail-over ({sessions} sessions, standbys={standbys}): survivor answered all "
        f"{len(progress) + len(coaches)} queries {recovery:.1f}s after SIGKILL"
    )
    wait_until(
        lambda: active_partitions(a, deployment) == set(range(PARTITIONS)),
        timeout=30,
        what="the survivor consuming every partition",
    )
