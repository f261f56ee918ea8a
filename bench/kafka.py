"""The few broker operations the harness needs: load a backlog, read offsets and record timestamps, clean up.

Everything is bounded: a wait that cannot end raises with what it waited for, so a wedged run fails loudly
instead of reporting a number.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.core.kafka import producer
from app.core.records import Headers
from app.settings import Settings

Rec = tuple[bytes | None, bytes | None, Headers]


def admin(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=30000)


async def preload(settings: Settings, topic: str, records: Sequence[Rec]) -> None:
    """Publish ``records`` to the real topic ``topic`` and wait for every acknowledgement."""
    prod = producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await prod.start()
    try:
        futures = [
            await prod.send(topic, value, key=key, headers=list(headers)) for key, value, headers in records
        ]
        await asyncio.gather(*futures)
    finally:
        await prod.stop()


async def partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    wanted = list(topics)
    client = admin(settings)
    await client.start()
    try:
        described = await client.describe_topics(wanted)
    finally:
        await client.close()
    return sorted(
        TopicPartition(d["topic"], p["partition"])
        for d in described
        if not d.get("error_code")
        for p in d.get("partitions", [])
    )


def consumer(settings: Settings, **extra: Any) -> AIOKafkaConsumer:
    opts: dict[str, Any] = {
        "group_id": None,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_committed",
    }
    opts.update(extra)
    return AIOKafkaConsumer(**settings.kafka_client_options(), **opts)


async def wait_leaders(settings: Settings, topics: Sequence[str], timeout: float = 30.0) -> None:
    """Until every partition of ``topics`` has a leader: created topics are not writable at once, and a
    producer's retries on a fresh topic would be timed as throughput."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client = admin(settings)
        await client.start()
        try:
            described = await client.describe_topics(list(topics))
        finally:
            await client.close()
        if len(described) == len(topics) and all(
            not d.get("error_code")
            and d.get("partitions")
            and all(p.get("leader", -1) >= 0 for p in d["partitions"])
            for d in described
        ):
            # metadata names a leader before that broker serves the partition (a produce right after gets
            # NOT_LEADER and backs off 100 ms a retry, inside a variant's clock); ListOffsets is answered only
            # by the serving leader, and the consumer retries it until then
            await end_offsets(
                settings,
                [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]],
            )
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no leaders for {list(topics)} after {timeout:.0f}s")


async def create(settings: Settings, names: Sequence[str], partitions: int = 6) -> None:
    from aiokafka.admin import NewTopic

    client = admin(settings)
    await client.start()
    try:
        await client.create_topics(
            [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names]
        )
    finally:
        await client.close()
    await wait_leaders(settings, names)


async def end_offsets(settings: Settings, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
    if not tps:
        return {}
    c = consumer(settings)
    await c.start()
    try:
        ends: dict[TopicPartition, int] = await c.end_offsets(list(tps))
        return ends
    finally:
        await c.stop()


async def committed(settings: Settings, group: str) -> dict[TopicPartition, int]:
    client = admin(settings)
    await client.start()
    try:
        found = await client.list_consumer_group_offsets(group)
    finally:
        await client.close()
    return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}


async def wait_consumed(settings: Settings, group: str, topic: str, timeout: float) -> None:
    """Until ``group`` has committed the end of every partition of ``topic`` (records are never added)."""
    tps = await partitions(settings, [topic])
    ends = await end_offsets(settings, tps)
    deadline = time.monotonic() + timeout
    done: dict[TopicPartition, int] = {}
    while time.monotonic() < deadline:
        done = await committed(settings, group)
        if all(done.get(tp, 0) >= ends[tp] for tp in tps):
            return
        await asyncio.sleep(0.5)
    behind = sum(ends[tp] - done.get(tp, 0) for tp in tps)
    raise TimeoutError(f"group {group} still {behind} records behind on {topic} after {timeout:.0f}s")


async def wait_quiet(
    settings: Settings, topics: Sequence[str], quiet: float = 2.0, timeout: float = 120.0
) -> int:
    """Until no record has been added to ``topics`` for ``quiet`` seconds; returns their total end offset."""
    tps = await partitions(settings, topics)
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        total = sum((await end_offsets(settings, tps)).values())
        if total != last:
            last, since = total, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return total
        await asyncio.sleep(0.25)
    raise TimeoutError(f"outputs {list(topics)} still growing after {timeout:.0f}s")


async def edge_timestamps(settings: Settings, topics: Sequence[str]) -> tuple[float, float] | None:
    """(earliest first-record, latest last-record) timestamp over ``topics`` in seconds, None when empty.

    Producers stamp records when they send them, so these bound when a pipeline wrote its first and last output
    without a reader racing it during the run.
    """
    tps = await partitions(settings, topics)
    c = consumer(settings, max_poll_records=100)
    await c.start()
    try:
        if not tps:
            return None
        c.assign(tps)
        begins = await c.beginning_offsets(tps)
        ends = await c.end_offsets(tps)
        full = [tp for tp in tps if ends[tp] > begins[tp]]
        if not full:
            return None
        first: list[int] = []
        last: list[int] = []
        for tp in full:
            c.seek(tp, begins[tp])
            head = await _read(c, tp, 1, ends[tp])
            c.seek(tp, max(begins[tp], ends[tp] - 50))
            tail = await _read(c, tp, None, ends[tp])
            first += [r.timestamp for r in head[:1]]
            last += [r.timestamp for r in tail[-1:]]
        return (min(first) / 1000, max(last) / 1000) if first and last else None
    finally:
        await c.stop()


async def _read(c: AIOKafkaConsumer, tp: TopicPartition, want: int | None, end: int) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        batch = await c.getmany(tp, timeout_ms=500)
        got += batch.get(tp, [])
        if (want is not None and len(got) >= want) or await c.position(tp) >= end:
            return got
    return got


async def named(settings: Settings, prefix: str, suffix: str = "") -> list[str]:
    """Every topic whose name starts with ``prefix`` and ends with ``suffix``."""
    client = admin(settings)
    await client.start()
    try:
        return sorted(t for t in await client.list_topics() if t.startswith(prefix) and t.endswith(suffix))
    finally:
        await client.close()


async def delete_prefix(settings: Settings, prefix: str) -> None:
    """Drop every topic whose name starts with ``prefix``: a run's topics must not weigh on the next one."""
    client = admin(settings)
    await client.start()
    try:
        doomed = [t for t in await client.list_topics() if t.startswith(prefix)]
        if doomed:
            await client.delete_topics(doomed)
    finally:
        await client.close()
