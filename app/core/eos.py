"""Exactly-once stage one on Kafka transactions, for domains whose catalog entry says ``exactly_once``.

Why not Faust's ``processing_guarantee="exactly_once"``: faust-streaming has open reports of duplicates after a
kill/restart or rebalance in that mode (issues 323, 517, 502, 177) and of offsets committed past in-flight messages
with concurrency > 1 (606). This stage uses aiokafka's transactional producer directly, as Kafka Streams' EOS-v1
does: one transactional id per input partition (``<app>-<domain>-eos-<partition>``), so a restarted or newly
assigned worker fences the zombie that owned the partition before it writes.

Per input partition and fetched batch, one transaction holds: every output of every record, the dead letters,
the dedupe marks (on a compacted ``seen`` topic, same partition), and the input offsets. Readers with
``read_committed`` see each accepted event's outputs exactly once or not at all. The in-memory dedupe set of a
partition is rebuilt from its ``seen`` partition (read_committed) when the partition is assigned.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerFenced, TopicAlreadyExistsError

from app.core.deadletter import deadletter_headers
from app.core.errors import RecordError
from app.core.records import DomainRules, Emit, Processed, RawRecord
from app.core.runtime import Runtime, encode_value, internal_error, normalize_headers

log = logging.getLogger("switchyard.eos")

MAX_BATCH = 500


class TransactionalStage:
    def __init__(self, runtime: Runtime, rules: DomainRules) -> None:
        self.rt = runtime
        self.rules = rules
        self.domain = rules.name
        s = runtime.settings
        self.source = s.topic(runtime.catalog.raw_topic(self.domain).name)
        self.group_id = f"{s.app_id}-{self.domain}-eos"
        self.seen_topic = f"{s.topic_prefix}{s.app_id}-{self.domain}-eos-seen"
        self.producers: dict[int, AIOKafkaProducer] = {}
        self.seen: dict[int, dict[str, float]] = {}
        self.lock = asyncio.Lock()
        #: per partition, the offset after the last committed transaction (the consumer's committed offset)
        self.next_offset: dict[int, int] = {}
        #: partitions whose producer was dropped after a failed transaction; the next batch makes a fresh one
        self.broken: set[int] = set()
        self.consumer: AIOKafkaConsumer | None = None

    # ---- lifecycle -----------------------------------------------------------------------------------------
    def register(self) -> None:
        self.rt.app.task(self.run)

    async def run(self) -> None:
        await self._ensure_seen_topic()
        s = self.rt.settings
        self.consumer = AIOKafkaConsumer(
            **s.kafka_client_options(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=MAX_BATCH,
            session_timeout_ms=int(s.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(s.heartbeat_interval_seconds * 1000),
        )
        self.consumer.subscribe([self.source], listener=_Listener(self))
        await self.consumer.start()
        log.info(
            "exactly-once stage started domain=%s source=%s group=%s", self.domain, self.source, self.group_id
        )
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=500, max_records=MAX_BATCH)
                for tp, records in batches.items():
                    if records:
                        await self._process(tp, records)
        finally:
            await self._close()

    async def _close(self) -> None:
        if self.consumer is not None:
            await self.consumer.stop()
        await self._drop_producers(list(self.producers))

    async def _ensure_seen_topic(self) -> None:
        s = self.rt.settings
        admin = AIOKafkaAdminClient(**s.kafka_client_options())
        await admin.start()
        try:
            if self.seen_topic not in set(await admin.list_topics()):
                partitions = (
                    len((await admin.describe_topics([self.source]))[0]["partitions"]) or s.topic_partitions
                )
                config = {
                    "cleanup.policy": "compact,delete",
                    "retention.ms": str(s.dedupe_ttl_seconds * 1000),
                }
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [NewTopic(self.seen_topic, partitions, s.topic_replication, topic_configs=config)]
                    )
        finally:
            await admin.close()

    # ---- partitions ----------------------------------------------------------------------------------------
    async def on_assigned(self, tps: Iterable[TopicPartition]) -> None:
        """Under the lock, and the producer published last: aiokafka may already hand out records of a partition
        while this listener runs, and they must wait for its dedupe set rather than be processed without it."""
        async with self.lock:
            for tp in tps:
                await self._assign(tp)

    async def _assign(self, tp: TopicPartition) -> None:
        prod = AIOKafkaProducer(
            **self.rt.settings.kafka_client_options(),
            transactional_id=f"{self.group_id}-{tp.partition}",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )
        await prod.start()  # init_transactions: fences any zombie with the same transactional id
        self.seen[tp.partition] = await self._restore_seen(tp.partition)
        assert self.consumer is not None
        self.next_offset[tp.partition] = await self.consumer.committed(tp) or 0
        self.producers[tp.partition] = prod
        log.info(
            "eos partition assigned domain=%s partition=%s seen=%d",
            self.domain,
            tp.partition,
            len(self.seen[tp.partition]),
        )

    async def on_revoked(self, tps: Iterable[TopicPartition]) -> None:
        async with self.lock:  # a batch in flight finishes its transaction first
            await self._drop_producers([tp.partition for tp in tps])

    async def _drop_producers(self, partitions: list[int]) -> None:
        for p in partitions:
            self.broken.discard(p)
            prod = self.producers.pop(p, None)
            self.seen.pop(p, None)
            self.next_offset.pop(p, None)
            if prod is not None:
                await prod.stop()

    async def _restore_seen(self, partition: int) -> dict[str, float]:
        s = self.rt.settings
        tp = TopicPartition(self.seen_topic, partition)
        # "earliest": assign() starts a position reset that can land after seek_to_beginning(); with aiokafka's
        # default ("latest") the restore would then silently read nothing and every redelivery pass as new.
        reader = AIOKafkaConsumer(
            **s.kafka_client_options(),
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
        )
        await reader.start()
        seen: dict[str, float] = {}
        try:
            reader.assign([tp])
            end = (await reader.end_offsets([tp]))[tp]
            await reader.seek_to_beginning(tp)
            horizon = time.time() - s.dedupe_ttl_seconds
            while await reader.position(tp) < end:
                for rec in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []):
                    if rec.key is None:
                        continue
                    stamp = float(rec.value or b"0")
                    if stamp >= horizon:
                        seen[rec.key.decode()] = stamp
        finally:
            await reader.stop()
        return seen

    # ---- processing ----------------------------------------------------------------------------------------
    async def _process(self, tp: TopicPartition, fetched: list[Any]) -> None:
        async with self.lock:
            if tp.partition in self.broken and not await self._renew(tp):
                return
            prod = self.producers.get(tp.partition)
            if prod is None:  # revoked while fetched
                return
            # A batch fetched before a rebalance that gave the partition back to us is processed, and then fetched
            # again from the committed offset it started at: what a committed transaction already covered is
            # skipped, or its dead letters would be written twice.
            records = [r for r in fetched if r.offset >= self.next_offset[tp.partition]]
            if not records:
                return
            seen = self.seen[tp.partition]
            marked: dict[str, float] = {}
            counts: dict[tuple[str, ...], int] = {}
            accepted: list[tuple[Processed, RawRecord, datetime]] = []
            started = time.perf_counter()
            try:
                async with prod.transaction():
                    for rec in records:
                        await self._one(prod, tp, rec, seen, marked, counts, accepted)
                    await prod.send_offsets_to_transaction({tp: records[-1].offset + 1}, self.group_id)
            except ProducerFenced:
                self.rt.metrics.transactions.labels(self.domain, "abort").inc()
                log.warning(
                    "producer fenced domain=%s partition=%s: another worker owns it now",
                    self.domain,
                    tp.partition,
                )
                await self._drop_producers([tp.partition])
                return
            except Exception:
                self.rt.metrics.transactions.labels(self.domain, "abort").inc()
                log.exception(
                    "transaction aborted domain=%s partition=%s; rewinding to the committed offset",
                    self.domain,
                    tp.partition,
                )
                await self._break(tp)
                return
            seen.update(marked)
            self.next_offset[tp.partition] = records[-1].offset + 1
            self._count(counts, time.perf_counter() - started, len(records))
            for processed, raw, now in accepted:
                self.rt._observe_lag(self.domain, processed.event_time, raw, now)

    async def _one(
        self,
        prod: AIOKafkaProducer,
        tp: TopicPartition,
        rec: Any,
        seen: dict[str, float],
        marked: dict[str, float],
        counts: dict[tuple[str, ...], int],
        accepted: list[tuple[Processed, RawRecord, datetime]],
    ) -> None:
        raw = RawRecord(
            rec.value,
            rec.key,
            normalize_headers(rec.headers),
            rec.topic,
            rec.partition,
            rec.offset,
            rec.timestamp,
        )
        now = self.rt.clock()
        try:
            processed = self.rules.process(raw, now)
            if processed.event_id in seen or processed.event_id in marked:
                counts[("dedupe",)] = counts.get(("dedupe",), 0) + 1
                return
            emits = [self.rt.encoded(e) for e in self.rules.route(processed, now)]
        except RecordError as err:
            await self._deadletter(prod, raw, err, counts)
            return
        except Exception as exc:
            log.exception(
                "unexpected error in %s at %s[%s]@%s", self.domain, raw.topic, raw.partition, raw.offset
            )
            await self._deadletter(prod, raw, internal_error(exc, "validate"), counts)
            return
        for e in emits:
            await self._send(prod, e)
        stamp = now.timestamp()
        await prod.send(
            self.seen_topic, f"{stamp:.3f}".encode(), key=processed.event_id.encode(), partition=tp.partition
        )
        marked[processed.event_id] = stamp
        key = ("accepted", processed.event_type)
        counts[key] = counts.get(key, 0) + 1
        accepted.append((processed, raw, now))

    async def _send(self, prod: AIOKafkaProducer, e: Emit) -> None:
        key = e.key.encode() if isinstance(e.key, str) else e.key
        await prod.send(
            self.rt.settings.topic(e.topic), encode_value(e.value), key=key, headers=list(e.headers)
        )
        self.rt.metrics.outputs.labels(e.topic).inc()

    async def _deadletter(
        self, prod: AIOKafkaProducer, raw: RawRecord, err: RecordError, counts: dict[tuple[str, ...], int]
    ) -> None:
        dlq = self.rt.catalog.deadletter_topic(self.domain).name
        headers = deadletter_headers(raw, err, self.rt.clock())
        await prod.send(self.rt.settings.topic(dlq), raw.value, key=raw.key, headers=list(headers))
        key = ("rejected", err.stage, err.code)
        counts[key] = counts.get(key, 0) + 1
        log.warning(
            "dead-lettered domain=%s code=%s stage=%s path=%s source=%s[%s]@%s",
            self.domain,
            err.code,
            err.stage,
            err.path or "-",
            raw.topic,
            raw.partition,
            raw.offset,
        )

    async def _break(self, tp: TopicPartition) -> None:
        """After a failed transaction: back to the offset after the last committed one, and drop the producer. One
        whose commit failed mid-way (a broker killed under it) stays in aiokafka's fatal state and refuses every later
        transaction, which stalled the partition for good; the next batch makes a fresh one (:meth:`_renew`)."""
        assert self.consumer is not None
        self.consumer.seek(tp, self.next_offset[tp.partition])
        self.broken.add(tp.partition)
        prod = self.producers.pop(tp.partition, None)
        if prod is not None:
            with contextlib.suppress(Exception):
                await prod.stop()

    async def _renew(self, tp: TopicPartition) -> bool:
        """A fresh producer for a broken partition, as an assignment makes it: it fences the old transactional id
        and the dedupe set and committed offset are read again. While the broker cannot answer, the partition
        stays broken and rewound."""
        try:
            await self._assign(tp)
        except Exception as exc:
            log.warning("eos producer not renewed domain=%s partition=%s: %r", self.domain, tp.partition, exc)
            assert self.consumer is not None
            self.consumer.seek(tp, self.next_offset[tp.partition])
            return False
        self.broken.discard(tp.partition)
        return True

    def _count(self, counts: dict[tuple[str, ...], int], seconds: float, n: int) -> None:
        """Metrics move only for committed transactions: an aborted batch is processed again."""
        m = self.rt.metrics
        m.transactions.labels(self.domain, "commit").inc()
        m.events_in.labels(self.domain).inc(n)
        m.last_event_time.labels(self.domain).set(time.time())
        for key, c in counts.items():
            if key[0] == "accepted":
                m.events_accepted.labels(self.domain, key[1]).inc(c)
            elif key[0] == "rejected":
                m.events_rejected.labels(self.domain, key[1], key[2]).inc(c)
                m.dlq_writes.labels(self.rt.catalog.deadletter_topic(self.domain).name).inc(c)
            else:
                m.dedupe_hits.labels(self.domain).inc(c)
        m.processing_seconds.labels(self.domain).observe(seconds / max(n, 1))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: TransactionalStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.stage.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.stage.rt.metrics.rebalances.inc()
        await self.stage.on_assigned(assigned)
