"""End-to-end latency at fixed offered loads, open loop.

The generator sends each record at its *intended* time (stamped in a header) whether or not the pipeline keeps
up, so queueing shows up as latency instead of silently lowering the offered rate (coordinated omission). A
consumer of the primary output topic, in this process, matches outputs to intended send times by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

from app.core.kafka import producer
from app.settings import Settings
from bench.kafka import Rec, consumer, partitions
from bench.scenarios import event_id_of

INTENDED_HEADER = "bench.intended-ns"


@dataclass
class Step:
    fraction: float
    offered_eps: float
    sent: int
    seen: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: an observed value, never an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-int(q * len(ordered) * 1000) // 1000)))
    return ordered[rank - 1]


def knee(steps: Sequence[Step]) -> float | None:
    """The lightest offered load whose p99 exceeds both 100 ms and twice the lightest step's p99, or which lost
    records: where queueing takes over. None when no step did."""
    if not steps or steps[0].p99_ms is None:
        return None
    base = steps[0].p99_ms
    for s in steps:
        if s.seen < s.sent or (s.p99_ms is not None and s.p99_ms > max(100.0, 2 * base)):
            return s.fraction
    return None


class LatencyProbe:
    def __init__(self, settings: Settings, raw_topic: str, primary: Sequence[str]) -> None:
        self.settings = settings
        self.raw_topic = raw_topic
        self.primary = list(primary)
        self.intended: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self._stop = asyncio.Event()

    async def _read(self, ready: asyncio.Event) -> None:
        cons = consumer(self.settings, fetch_max_wait_ms=10, max_poll_records=1000)
        await cons.start()
        try:
            tps = await partitions(self.settings, self.primary)
            cons.assign(tps)
            await cons.seek_to_end(*tps)
            for tp in tps:
                await cons.position(tp)
            ready.set()
            while not self._stop.is_set():
                batches = await cons.getmany(timeout_ms=50)
                now = time.time()
                for records in batches.values():
                    for rec in records:
                        eid = event_id_of(rec.value)
                        if eid is not None and eid not in self.arrived:
                            self.arrived[eid] = now
        finally:
            await cons.stop()

    async def run(
        self, pool: Sequence[tuple[Rec, str]], max_eps: float, fractions: Sequence[float], seconds: float
    ) -> list[Step]:
        ready = asyncio.Event()
        self._stop = asyncio.Event()
        reader = asyncio.create_task(self._read(ready))
        prod = producer(self.settings, linger_ms=0)
        await prod.start()
        steps: list[Step] = []
        try:
            await asyncio.wait_for(ready.wait(), 30)
            cursor = 0
            for fraction in fractions:
                rate = max(fraction * max_eps, 1.0)
                batch = list(pool[cursor : cursor + max(1, int(rate * seconds))])
                cursor += len(batch)
                await self._offer(prod, batch, rate)
                ids = [eid for _, eid in batch]
                deadline = time.monotonic() + seconds + 20
                # a bounded poll of what the consumer task records (no event to wait on)
                while time.monotonic() < deadline and not all(i in self.arrived for i in ids):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                lat = [(self.arrived[i] - self.intended[i]) * 1000 for i in ids if i in self.arrived]
                steps.append(
                    Step(
                        fraction,
                        rate,
                        len(ids),
                        len(lat),
                        percentile(lat, 0.50),
                        percentile(lat, 0.99),
                        max(lat) if lat else None,
                    )
                )
                if len(lat) < len(ids):
                    break
        finally:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await prod.stop()
        return steps

    async def _offer(self, prod: object, batch: Sequence[tuple[Rec, str]], rate: float) -> None:
        from aiokafka import AIOKafkaProducer

        assert isinstance(prod, AIOKafkaProducer)
        start = time.time() + 0.05
        futures = []
        for i, ((key, value, headers), eid) in enumerate(batch):
            intended = start + i / rate
            delay = intended - time.time()
            if delay > 0.001:
                await asyncio.sleep(delay)
            self.intended[eid] = intended
            stamp = (INTENDED_HEADER, str(int(intended * 1e9)).encode())
            futures.append(await prod.send(self.raw_topic, value, key=key, headers=[*headers, stamp]))
        await asyncio.gather(*futures)
