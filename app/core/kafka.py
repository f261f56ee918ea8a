"""Small aiokafka helpers, outside Faust: the producer and reader the CLI, the demo, the bench and the tests use,
and what the worker's own aiokafka consumers (the exactly-once stages, the CRM sink) share: the record conversion
and the lag they report. Those build their own clients (a transactional producer per partition, a consumer that
commits its own offsets, the webhook ingress's producer) from the same :meth:`Settings.kafka_client_options`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.core.records import RawRecord, normalize_headers
from app.settings import Settings


def producer(settings: Settings, **extra: Any) -> AIOKafkaProducer:
    """An idempotent, acks=all producer for the CLI, the demo, the bench and the tests."""
    opts: dict[str, Any] = {"acks": "all", "enable_idempotence": True, "linger_ms": 5}
    opts.update(extra)
    return AIOKafkaProducer(**settings.kafka_client_options(), **opts)


async def partition_count(settings: Settings, topic: str) -> int:
    """Partitions of ``topic`` (0 when it does not exist), from the broker's metadata."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**settings.kafka_client_options())
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    for d in described:
        if d.get("topic") == topic and not d.get("error_code"):
            return len(d.get("partitions", []))
    return 0


async def read_to_end(
    settings: Settings,
    topic: str,
    *,
    isolation_level: str = "read_committed",
    group_id: str | None = None,
    from_committed: bool = False,
    commit_at_end: bool = False,
) -> AsyncIterator[Any]:
    """Yield every record of ``topic`` that exists now (end offsets are fixed when the read starts).

    With ``group_id`` and ``from_committed`` the read starts at the group's committed offsets; with
    ``commit_at_end`` the group's offsets move to the end once the caller has consumed everything (dlq replay
    uses this so a second replay does not resend what the first one sent).
    """
    consumer = AIOKafkaConsumer(
        **settings.kafka_client_options(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(await partition_count(settings, topic))]
        if not tps:
            return
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        if not from_committed:
            await consumer.seek_to_beginning(*tps)
        else:
            for tp in tps:
                committed = await consumer.committed(tp)
                if committed is None:
                    await consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, committed)
        pending = {tp for tp in tps if ends[tp] > 0}
        for tp in list(pending):
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
        while pending:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                for rec in records:
                    if rec.offset < ends[tp]:
                        yield rec
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        if group_id and commit_at_end:
            await consumer.commit({tp: ends[tp] for tp in tps})
    finally:
        await consumer.stop()


def raw_of(rec: Any) -> RawRecord:
    """An aiokafka ``ConsumerRecord`` as a :class:`RawRecord` (its timestamp is in milliseconds already)."""
    return RawRecord(
        rec.value,
        rec.key,
        normalize_headers(rec.headers),
        rec.topic,
        rec.partition,
        rec.offset,
        rec.timestamp,
    )


async def group_lag(
    consumer: AIOKafkaConsumer, committed: Callable[[TopicPartition], int | None]
) -> list[tuple[str, int, int]]:
    """(topic, partition, records behind) for every partition assigned to ``consumer``: the log's end offset minus
    the group's committed offset, what Kafka's ConsumerGroupCommand shows. The end is asked of the broker, not
    read from the last fetch: a consumer that holds its records (the CRM sink while the CRM is down) fetches
    nothing more, and its high watermark would stand still while the backlog grows behind it. Partitions with no
    known commit are left out."""
    assigned = sorted(consumer.assignment())
    if not assigned:
        return []
    ends = await consumer.end_offsets(assigned)
    out: list[tuple[str, int, int]] = []
    for tp in assigned:
        done = committed(tp)
        if done is not None and tp in ends:
            out.append((tp.topic, tp.partition, max(ends[tp] - done, 0)))
    return out
