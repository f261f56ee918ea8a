"""Scale-out on a real broker: workers join and leave mid-stream and every event is still counted exactly once.

Three workers share the test-only domain's six partitions; a fourth joins while records are in flight and one
of the first three leaves (SIGTERM) while more arrive. Redeliveries are mixed in, some of them after the
rebalances, so the dedupe state has to move with its partitions. Then every worker is asked for every key and
must give the same answer, the owner's, which is the reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.kafka import partition_count
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

CATALOG = str(Path(__file__).parents[1] / "integration" / "testdomain" / "catalog.yaml")
PARTITIONS = 6
CHUNK = 150
CHUNKS = 5

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def event(i: int) -> Record:
    ident = f"e{i:05d}"
    return ident.encode(), json.dumps({"id": ident, "n": i % 7 + 1}).encode(), []


def chunk(k: int) -> list[Record]:
    """The k-th slice of the stream: new events, plus redeliveries of events from this and earlier slices."""
    fresh = [event(i) for i in range(k * CHUNK, (k + 1) * CHUNK)]
    again = [event(i) for i in range(0, (k + 1) * CHUNK, 9)]
    return fresh + again


def reference() -> dict[str, int]:
    return {f"e{i:05d}": i % 7 + 1 for i in range(CHUNKS * CHUNK)}


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, unique_name: Any) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        unique_name("scale").replace(".", "-"),
        tmp_path,
        SWITCHYARD_CATALOG_FILE=CATALOG,
        SWITCHYARD_CRM_ENABLED="false",  # the test-only catalog has no crm.commands topic
        SWITCHYARD_TOPIC_PARTITIONS=str(PARTITIONS),
        SWITCHYARD_SESSION_TIMEOUT_SECONDS="10",
        SWITCHYARD_HEARTBEAT_INTERVAL_SECONDS="1",
        # With standby replicas Faust's sticky assignor leaves every worker at ceil(6/4) = 2 partitions, so a
        # fourth worker would only get standbys; see deploy/k8s/README.md.
        SWITCHYARD_STANDBY_REPLICAS="0",
    )
    d.cli("topics", "create")
    try:
        yield d
    finally:
        d.stop_all()


def processed(w: Worker) -> float:
    return w.metric("switchyard_events_in_total", domain="testdomain")


def launch(w: Worker) -> None:
    """Start a worker process without waiting for it: it joins the group while records are flowing."""
    import subprocess
    import sys

    from app.paths import ROOT

    with w.log.open("ab") as out:
        w.proc = subprocess.Popen(
            [sys.executable, "-m", "app", "worker"],
            env=w.deployment._environ(**w.env),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )


def test_workers_join_and_leave_mid_stream_and_every_event_counts_once(deployment: Deployment) -> None:
    s = deployment.settings
    import asyncio

    assert asyncio.run(partition_count(s, s.topic("testdomain.raw"))) == PARTITIONS

    first = [deployment.worker() for _ in range(3)]
    with ThreadPoolExecutor(len(first)) as pool:
        list(pool.map(lambda w: w.start(ready_timeout=90), first))

    produce(s, "testdomain.raw", chunk(0))
    wait_until(lambda: sum(processed(w) for w in first) >= CHUNK, what="the first slice under way")

    joiner = deployment.worker()
    launch(joiner)  # joins while the second slice is in flight
    produce(s, "testdomain.raw", chunk(1))
    joiner.wait_ready(90)
    produce(s, "testdomain.raw", chunk(2))

    leaver = first[0]
    assert leaver.proc is not None
    leaver.proc.send_signal(15)  # SIGTERM while the fourth slice is in flight
    produce(s, "testdomain.raw", chunk(3))
    assert leaver.proc.wait(timeout=60) == 0
    produce(s, "testdomain.raw", chunk(4))

    staying = [*first[1:], joiner]
    want = reference()
    out = wait_until(
        lambda: len(recs := read_all(s, "testdomain.out")) >= len(want) and recs,
        timeout=90,
        what=f"{len(want)} outputs",
    )
    ids = [json.loads(r.value)["id"] for r in out]
    assert len(ids) == len(set(ids)), "an event was output twice"
    raw_at = {r.key.decode(): (r.partition, r.offset) for r in read_all(s, "testdomain.raw")}
    lost = {i: raw_at[i] for i in sorted(set(want) - set(ids))}
    assert not lost, f"consumed (offsets committed) but never processed, (partition, offset): {lost}"
    assert processed(joiner) > 0, "the worker that joined never got a partition"

    with httpx.Client(timeout=10) as client:

        def answers(key: str) -> list[Any]:
            got = []
            for w in staying:
                r = client.get(f"{w.url}/api/testdomain/{key}")
                got.append(r.json() if r.status_code == 200 else r.status_code)
            return got

        wrong = {}
        for key, n in want.items():
            got = wait_until(lambda k=key: answers(k), timeout=30, what=f"answers for {key}")
            if got != [{"total": n}] * len(staying):
                wrong[key] = (n, got)
    feed = read_all(s, "testdomain.feed")
    if wrong:
        keys = [r.key.decode() for r in feed]
        detail = {k: {"want": n, "got": got, "feed records": keys.count(k)} for k, (n, got) in wrong.items()}
        pytest.fail(f"table answers differ from the reference: {detail}")

    # The table is partitioned like its feed: a worker answering for keys of partitions it does not own
    # had the question routed to the owner.
    partition_of = {r.key.decode(): r.partition for r in feed}

    def settled() -> dict[int, set[int]] | None:
        """Each partition owned by exactly one worker. The gauge is polled (every 5 s): right after the last
        rebalance a worker may still show the partitions it had before."""
        owned = {w.index: owned_partitions(w, s.topic("testdomain.feed")) for w in staying}
        return owned if sorted(p for ps in owned.values() for p in ps) == list(range(PARTITIONS)) else None

    owned = wait_until(settled, timeout=30, what="one owner per feed partition in the lag gauges")
    for w in staying:
        assert any(partition_of[k] not in owned[w.index] for k in want), f"worker {w.index} owns everything"


def owned_partitions(w: Worker, topic: str) -> set[int]:
    """Partitions of ``topic`` actively assigned to ``w``: the monitor's lag gauge has one series each."""
    return {
        int(dict(labels)["partition"])
        for (name, labels), _ in w.metrics().items()
        if name == "switchyard_consumer_lag_records" and dict(labels).get("topic") == topic
    }
