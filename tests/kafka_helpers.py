"""Async aiokafka helpers for integration tests: create topics, read a topic to its end, poll until true.

Every wait here is bounded and says what it waited for: a hung broker or a lost record must fail the test
with a reason, never hang it.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar, overload

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

T = TypeVar("T")

Record = tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes]]]


@overload
async def wait_for(
    predicate: Callable[[], Awaitable[T]], timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


@overload
async def wait_for(
    predicate: Callable[[], T], timeout: float = ..., interval: float = ..., what: str = ...
) -> T: ...


async def wait_for(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.1,
    what: str = "condition",
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy, and return that.

    Raises TimeoutError naming ``what`` and the last value seen, so a failure says how far things got.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        result = predicate()
        last = await result if inspect.isawaitable(result) else result
        if last:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


async def create_topics(
    bootstrap: str,
    names: Iterable[str],
    partitions: int = 3,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> None:
    """Create ``names`` and return once every partition has a leader (producers can write at once)."""
    wanted = list(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(n, num_partitions=partitions, replication_factor=1, topic_configs=dict(config or {}))
                for n in wanted
            ]
        )

        async def all_led() -> bool:
            described = await admin.describe_topics(wanted)
            return len(described) == len(wanted) and all(
                not d.get("error_code")
                and len(d.get("partitions", [])) == partitions
                and all(p.get("leader", -1) >= 0 for p in d["partitions"])
                for d in described
            )

        await wait_for(all_led, timeout, what=f"leaders for {wanted}")
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: Iterable[Record], **producer_options: Any) -> None:
    """Send ``(key, value, headers)`` records with an idempotent acks=all producer and wait for every ack."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **producer_options
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=value, key=key, headers=list(headers))
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """Partition ids of ``topic`` from the broker (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(
        p["partition"]
        for d in described
        if d.get("topic") == topic and not d.get("error_code")
        for p in d["partitions"]
    )


async def consume_all(
    bootstrap: str,
    topic: str,
    timeout: float = 30.0,
    isolation_level: str = "read_committed",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record in ``topic`` up to its end offsets as they are when the call starts, in partition order.

    With ``read_committed`` the end is the last stable offset: records of open transactions are neither
    returned nor waited for. No consumer group is used, so nothing is committed and tests can call it again.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        parts = await partitions_of(bootstrap, topic)
        if not parts:
            raise LookupError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        got: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {tp: [] for tp in tps}

        async def reached_end() -> bool:
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for tp, recs in batch.items():
                got[tp].extend(r for r in recs if r.offset < ends[tp])
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return False
            return True

        await wait_for(reached_end, timeout, interval=0, what=f"the end of {topic} ({ends})")
        return [r for tp in tps for r in got[tp]]
    finally:
        await consumer.stop()


async def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: Iterable[int]
) -> dict[int, int | None]:
    """The offsets ``group`` has committed on ``topic``'s ``partitions`` (``None``: nothing committed yet)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()
