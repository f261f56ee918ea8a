"""Scenario 2: the broker hard-killed (and, as Kafka's own bounce tests do, also cleanly stopped) and restarted
mid-stream on the same data dir, under the mixed load. Scenario 3: a rebalance storm, workers joining and leaving
every few seconds while the load flows. Both end with the same per-domain check as the SIGKILL scenario.

The broker of scenario 2 is this test's own :class:`EmbeddedBroker`, never the session's: killing the shared one
would fail every other test running against it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.broker import EmbeddedBroker
from tests.reliability.load import Mix, crashed_agents, events_in, figures, publish, settle
from tests.reliability.test_worker_kills import record
from tests.worker import Deployment, Worker, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(data_dir=tmp_path / "kafka", heap="384m")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def exited(workers: list[Worker]) -> int:
    """Workers that ended without the test asking, plus agents Faust had to restart."""
    return sum(w.proc is not None and w.proc.poll() is not None for w in workers) + sum(
        crashed_agents(w) for w in workers
    )


def test_broker_killed_and_restarted_mid_stream_loses_nothing(
    deploy: Callable[..., Deployment], own_broker: EmbeddedBroker
) -> None:
    mix = Mix.make(seed=303)
    d = deploy(own_broker.bootstrap)
    w = d.worker().start()
    chunks = list(mix.chunks(3))
    bounces = [own_broker.kill, own_broker.stop]  # a crash, then a controlled shutdown
    for i, bounce in enumerate(bounces):
        publish(d, chunks[i])
        size = sum(len(c) for c in chunks[i].values())
        wait_until(lambda s=size: events_in(w) >= s // 3, timeout=90, interval=0.2, what="work in flight")
        bounce()
        own_broker.start()
    publish(d, chunks[-1])
    tallies = settle(d, w, mix, timeout=240)
    crashes = exited([w])
    record("2-broker-bounce", figures(tallies, bounces=["kill", "stop"], crashes=crashes))
    assert {dom: t.problems for dom, t in tallies.items() if t.problems} == {}
    assert tallies["pismo"].duplicated == 0
    assert crashes == 0


def storm(d: Deployment, mix: Mix, seconds: float, seed: int) -> dict[str, object]:
    """A worker joins or leaves (SIGTERM mostly, sometimes SIGKILL) about every three seconds of ``seconds``,
    counted in membership changes rather than wall time: on a loaded box a start alone can take that long, and
    a storm measured by the clock would shrink to a breeze."""
    rng = random.Random(seed)
    running = [d.worker().start(), d.worker().start()]
    left: list[Worker] = []
    toggles = max(6, int(seconds // 3))
    chunks = list(mix.chunks(toggles + 1))
    joins = leaves = 0
    for chunk in chunks[:-1]:
        publish(d, chunk)
        if len(running) == 1 or (len(running) < 3 and rng.random() < 0.5):
            running.append(d.worker().start())
            joins += 1
        else:
            leaving = running.pop(rng.randrange(len(running)))
            leaving.stop() if rng.random() < 0.7 else leaving.kill()
            left.append(leaving)
            leaves += 1
    publish(d, chunks[-1])
    tallies = settle(d, running[0], mix, timeout=240)
    crashes = sum(w.proc is not None and w.proc.poll() is not None for w in running) + sum(
        crashed_agents(w) for w in [*running, *left]
    )
    return {"tallies": tallies, "joins": joins, "leaves": leaves, "crashes": crashes}


def test_rebalance_storm_loses_nothing(deploy: Callable[..., Deployment], kafka_bootstrap: str) -> None:
    mix = Mix.make(seed=404)
    run = storm(deploy(kafka_bootstrap), mix, seconds=20, seed=4)
    tallies = run["tallies"]
    assert isinstance(tallies, dict)
    record(
        "3-rebalance-storm",
        figures(tallies, joins=run["joins"], leaves=run["leaves"], crashes=run["crashes"]),
    )
    assert {dom: t.problems for dom, t in tallies.items() if t.problems} == {}
    assert tallies["pismo"].duplicated == 0
    assert run["crashes"] == 0


@pytest.mark.slow
def test_a_minute_long_rebalance_storm_loses_nothing(
    deploy: Callable[..., Deployment], kafka_bootstrap: str
) -> None:
    mix = Mix.make(seed=505, scale=3)
    run = storm(deploy(kafka_bootstrap), mix, seconds=60, seed=5)
    tallies = run["tallies"]
    assert isinstance(tallies, dict)
    record(
        "3-rebalance-storm-long",
        figures(tallies, joins=run["joins"], leaves=run["leaves"], crashes=run["crashes"]),
    )
    assert {dom: t.problems for dom, t in tallies.items() if t.problems} == {}
    assert run["crashes"] == 0
