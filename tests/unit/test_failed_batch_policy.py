"""The retry policy of a batch whose handling fails (:func:`app.core.runtime.worker.handled`), without a broker:
how long it waits, what it counts, and when it gives a batch up. ``tests/integration/test_failed_batches.py`` runs
the same function in a real Faust worker and checks the commits."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from app.core.runtime.worker import RETRY_MAX_SECONDS, abandon_batches, handled, retry_pause


def events(n: int) -> list[Any]:
    return [
        SimpleNamespace(message=SimpleNamespace(topic="t", partition=0, offset=i, acked=False))
        for i in range(n)
    ]


class Fails:
    """A handler that raises ``times`` times, then succeeds."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    async def __call__(self, batch: list[Any]) -> None:
        self.calls += 1
        if self.calls <= self.times:
            raise OSError("broker refused the send")


def retries(registry: CollectorRegistry | None = None) -> Counter:
    return Counter("retries", "batch retries", ["stage"], registry=registry or CollectorRegistry())


def test_a_failing_batch_is_retried_with_a_doubling_capped_wait_until_it_succeeds() -> None:
    waits: list[float] = []

    async def sleep(s: float) -> None:
        waits.append(s)

    registry = CollectorRegistry()
    batch, handle = events(3), Fails(9)
    asyncio.run(handled("d.stage-one", batch, handle, retries(registry), sleep, lambda: False))
    assert handle.calls == 10
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, RETRY_MAX_SECONDS, RETRY_MAX_SECONDS, RETRY_MAX_SECONDS]
    assert registry.get_sample_value("retries_total", {"stage": "d.stage-one"}) == 9
    assert not any(e.message.acked for e in batch)  # handled: Faust acknowledges it as usual


def test_a_batch_still_failing_when_the_worker_stops_is_withheld_from_the_commit() -> None:
    stopped = False

    async def sleep(s: float) -> None:
        nonlocal stopped
        stopped = True  # the stop arrives during the wait

    batch, handle = events(3), Fails(99)
    asyncio.run(handled("d.fold", batch, handle, retries(), sleep, lambda: stopped))
    assert handle.calls == 1
    assert all(e.message.acked for e in batch)  # Faust's own acknowledgement becomes a no-op


def test_a_cancelled_attempt_is_withheld_and_the_cancellation_goes_on() -> None:
    async def never(batch: list[Any]) -> None:
        await asyncio.Event().wait()

    async def run() -> list[Any]:
        batch = events(2)
        task = asyncio.ensure_future(handled("d.fold", batch, never, retries(), asyncio.sleep, lambda: False))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return batch

    assert all(e.message.acked for e in asyncio.run(run()))


class FakeApp:
    """What :func:`retry_pause` reads of a Faust app: its stop, its consumer's flow, its stop-aware sleep."""

    def __init__(self) -> None:
        self.should_stop = False
        self.consumer = SimpleNamespace(flow_active=True)
        self.slept: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if len(self.slept) == 3:
            self.consumer.flow_active = False  # a rebalance stops the flow to revoke partitions


def test_the_pause_between_retries_ends_when_a_rebalance_stops_the_flow() -> None:
    """Faust's revocation waits for the batches in flight: a failing batch must let go within a slice, not after
    its whole 30 s wait, or the worker misses the rebalance and is put out of the group."""
    app = FakeApp()
    asyncio.run(retry_pause(app, 30.0))
    assert app.slept == [0.25, 0.25, 0.25]
    assert abandon_batches(app)
    app.consumer.flow_active, app.should_stop = True, True
    assert abandon_batches(app)
