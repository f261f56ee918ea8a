"""Variants A and B: plain aiokafka consume -> produce loops in this process, no Faust.

A (passthrough) moves the raw bytes to another topic: what the broker and client allow at all. B (plain) runs
every record through the very functions the worker runs (``process``, dedupe, ``route``, encoding, dead letters,
the table folds) and produces what the worker would: what our own code costs. Both commit offsets once a second
as the worker does, and pipeline their sends per fetched batch (a batch's acknowledgements are awaited together).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Container
from dataclasses import dataclass, field
from typing import Any

import orjson

from app.core.clock import utc_now
from app.core.codecs import encode_json
from app.core.deadletter import deadletter_headers
from app.core.dedupe import SeenIds
from app.core.engine import encode_value, internal_error
from app.core.errors import RecordError
from app.core.kafka import producer, raw_of
from app.core.records import DomainRules, Emit, RawRecord, TableRule
from app.settings import Settings
from bench.kafka import consumer

BATCH = 500
COMMIT_EVERY = 1.0

Send = Callable[[str, bytes | None, bytes | None, list[tuple[str, bytes]]], Awaitable[Any]]


@dataclass
class LoopResult:
    records: int
    seconds: float
    outputs: Counter[str] = field(default_factory=Counter)

    @property
    def eps(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


async def _drain(
    settings: Settings,
    source: str,
    group: str,
    expected: int,
    handle: Callable[[Any, Send], Awaitable[None]],
    timeout: float,
    end_batch: Callable[[Send], Awaitable[None]] | None = None,
) -> LoopResult:
    cons = consumer(settings, group_id=group, max_poll_records=BATCH)
    prod = producer(settings)
    await prod.start()
    await cons.start()
    result = LoopResult(0, 0.0)
    try:
        cons.subscribe([source])
        futures: list[Any] = []

        async def send(
            topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
        ) -> None:
            futures.append(await prod.send(topic, value, key=key, headers=headers))
            result.outputs[topic] += 1

        started: float | None = None
        last_commit = time.monotonic()
        deadline = time.monotonic() + timeout
        while result.records < expected:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"loop on {source} consumed {result.records} of {expected} in {timeout:.0f}s"
                )
            batches = await cons.getmany(timeout_ms=500, max_records=BATCH)
            if not batches:
                continue
            if started is None:
                started = time.perf_counter()
            for records in batches.values():
                for rec in records:
                    await handle(rec, send)
                    result.records += 1
            if end_batch is not None:
                await end_batch(send)
            for fut in futures:
                await fut
            futures.clear()
            if time.monotonic() - last_commit >= COMMIT_EVERY:
                await cons.commit()
                last_commit = time.monotonic()
        await cons.commit()
        result.seconds = time.perf_counter() - (started or time.perf_counter())
        return result
    finally:
        await cons.stop()
        await prod.stop()


async def passthrough(
    settings: Settings, source: str, dest: str, group: str, expected: int, timeout: float
) -> LoopResult:
    """Variant A: the same bytes, key and headers onto ``dest``; nothing parsed."""

    async def handle(rec: Any, send: Send) -> None:
        await send(dest, rec.key, rec.value, list(rec.headers or ()))

    return await _drain(settings, source, group, expected, handle, timeout)


class PlainPipeline:
    """What the worker does with a raw record, minus Faust: stage one, then the folds its emits feed.

    Table state lives in dicts and round-trips through JSON as the worker's tables do; the folds run inline on
    the values just routed instead of re-reading the feed topic (the feed records are still produced). Like the
    worker's engine, a fetched batch sends a compacted (snapshot) topic only each key's last value
    (:meth:`end_batch`).
    """

    def __init__(
        self, rules: DomainRules, out: Settings, deadletter_topic: str, compacted: Container[str] = ()
    ) -> None:
        self.rules = rules
        self.out = out
        self.deadletter_topic = deadletter_topic
        self.compacted = compacted
        #: (topic, key) -> (value, headers) of this batch's latest emit to a compacted topic
        self.latest: dict[tuple[str, bytes | None], tuple[bytes | None, list[tuple[str, bytes]]]] = {}
        self.seen = SeenIds({}, out.dedupe_ttl_seconds)
        self.tables: dict[str, tuple[TableRule, dict[bytes, bytes]]] = {
            t.source_topic: (t, {}) for t in rules.tables
        }

    async def handle(self, rec: Any, send: Send) -> None:
        raw = raw_of(rec)
        now = utc_now()
        try:
            processed = self.rules.process(raw, now)
        except RecordError as err:
            await self._deadletter(raw, err, send)
            return
        except Exception as exc:
            await self._deadletter(raw, internal_error(exc, "validate"), send)
            return
        if self.seen.seen(processed.event_id, now):
            return
        try:
            emits = self.rules.route(processed, now)
        except RecordError as err:
            await self._deadletter(raw, err, send)
            return
        await self._emit(emits, send, now)
        self.seen.mark(processed.event_id, now)

    async def _emit(self, emits: Any, send: Send, now: Any) -> None:
        for e in emits:
            key = e.key.encode() if isinstance(e.key, str) else e.key
            value = encode_value(e.value)
            if e.topic in self.compacted:
                self.latest.pop((e.topic, key), None)
                self.latest[(e.topic, key)] = (value, list(e.headers))
            else:
                await send(self.out.topic(e.topic), key, value, list(e.headers))
            if e.topic in self.tables and key is not None:
                await self._fold(e, key, value, send, now)

    async def _fold(self, e: Emit, key: bytes, value: bytes | None, send: Send, now: Any) -> None:
        rule, state = self.tables[e.topic]
        held = state.get(key)
        try:
            folded = rule.fold(
                None if held is None else orjson.loads(held), orjson.loads(value) if value else None, now
            )
        except RecordError:
            return
        if folded.changed:
            if folded.state is None:
                state.pop(key, None)
            else:
                state[key] = encode_json(folded.state)
        await self._emit(folded.emits, send, now)

    async def end_batch(self, send: Send) -> None:
        for (topic, key), (value, headers) in self.latest.items():
            await send(self.out.topic(topic), key, value, headers)
        self.latest.clear()

    async def _deadletter(self, raw: RawRecord, err: RecordError, send: Send) -> None:
        headers = deadletter_headers(raw, err, utc_now())
        await send(self.out.topic(self.deadletter_topic), raw.key, raw.value, list(headers))


async def plain(
    settings: Settings,
    rules: DomainRules,
    deadletter_topic: str,
    out: Settings,
    source: str,
    group: str,
    expected: int,
    timeout: float,
    compacted: Container[str] = (),
) -> LoopResult:
    """Variant B: every record through the domain's functions, outputs to ``out``'s (prefixed) topics."""
    pipeline = PlainPipeline(rules, out, deadletter_topic, compacted)
    return await _drain(settings, source, group, expected, pipeline.handle, timeout, pipeline.end_batch)
