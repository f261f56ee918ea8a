"""Exactly-once stage one on Kafka transactions: the stage-one driver of domains whose catalog entry says
``exactly_once`` (the domain's stage-two folds stay on the at-least-once agents of :mod:`.worker`, idempotent
like every fold). It talks to Kafka through aiokafka, not Faust, but runs as a task of the worker's Faust app
(:meth:`Runtime.task`) and reports lag through :attr:`Runtime.lag_sources`, hence its place in this package.

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
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerFenced, TopicAlreadyExistsError

from app.core.dedupe import stamp
from app.core.kafka import group_lag, raw_of
from app.core.records import DomainRules
from app.core.runtime.worker import Runtime

log = logging.getLogger("switchyard.eos")

MAX_BATCH = 500

#: How long a transactional producer waits before it retries a request the broker answered with a retriable
#: error. Back-to-back transactions meet such answers all the time: a partition's next write, or its offsets, reach
#: the broker while the previous transaction is still being completed, and the broker (which verifies every
#: transactional write since Kafka 3.6, KAFKA-14561) answers the produce request NOT_ENOUGH_REPLICAS and the offset
#: commit COORDINATOR_NOT_AVAILABLE. aiokafka waits ``retry_backoff_ms`` (100 by default) before each retry, only
#: AddPartitionsToTxn has a 20 ms override (KAFKA-5477), and the whole transaction waits with it: on the latency
#: bench's Pismo run, 40 such waits, p50 ~200 ms and p99 340-375 ms at half the drain rate; at 20 ms, p50 ~97 ms
#: and p99 149-170 ms (three alternating pairs).
TXN_RETRY_BACKOFF_MS = 20


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
        self.rt.task(self.run)
        self.rt.lag_sources.append(self.lag)

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
                # Each partition has its own transactional producer: their transactions commit side by side, so a
                # fetch spanning six partitions waits for one commit round trip, not six in a row.
                async with self.lock:
                    await asyncio.gather(*(self._process(tp, recs) for tp, recs in batches.items() if recs))
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
            **self.rt.settings.producer_options(),
            transactional_id=f"{self.group_id}-{tp.partition}",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            retry_backoff_ms=TXN_RETRY_BACKOFF_MS,
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
            horizon = self.rt.clock().timestamp() - s.dedupe_ttl_seconds
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
        """One transaction for one partition's batch. The caller holds the lock (a rebalance waits for it)."""
        if tp.partition in self.broken and not await self._renew(tp):
            return
        prod = self.producers.get(tp.partition)
        if prod is None:  # revoked while fetched
            return
        # A batch fetched before a rebalance that gave the partition back to us is processed, and then fetched
        # again from the committed offset it started at: what a committed transaction already covered is
        # skipped, or its dead letters would be written twice.
        records = [raw_of(r) for r in fetched if r.offset >= self.next_offset[tp.partition]]
        if not records:
            return
        seen = self.seen[tp.partition]
        started = time.perf_counter()
        now = self.rt.clock()
        tracing = self.rt.tracing
        spans = tracing.consume("stage-one", self.domain, records) if tracing.enabled else None
        step = self.rt.engine.stage_one(
            self.rules, records, lambda raw, event_id: event_id in seen, now, spans.carry if spans else None
        )
        marked = now.timestamp()
        try:
            async with prod.transaction():
                for e in step.emits:
                    await prod.send(self.rt.wire_name(e.topic), e.value, key=e.key, headers=list(e.headers))
                mark = stamp(now)
                for raw, event_id in step.marks:
                    await prod.send(self.seen_topic, mark, key=event_id.encode(), partition=raw.partition)
                await prod.send_offsets_to_transaction({tp: records[-1].offset + 1}, self.group_id)
        except ProducerFenced:
            self.rt.metrics.transactions.labels(self.domain, "abort").inc()
            log.warning(
                "producer fenced domain=%s partition=%s: another worker owns it now",
                self.domain,
                tp.partition,
            )
            await self._drop_producers([tp.partition])
            if spans is not None:
                spans.abort("fenced")
            return
        except Exception:
            self.rt.metrics.transactions.labels(self.domain, "abort").inc()
            log.exception(
                "transaction aborted domain=%s partition=%s; rewinding to the committed offset",
                self.domain,
                tp.partition,
            )
            await self._break(tp)
            if spans is not None:
                spans.abort("aborted")
            return
        seen.update((event_id, marked) for _, event_id in step.marks)
        self.next_offset[tp.partition] = records[-1].offset + 1
        self.rt.metrics.transactions.labels(self.domain, "commit").inc()
        # Counted only once committed: an aborted batch is processed again, and counted then.
        self.rt.accounting.stage_one(self.domain, step, time.perf_counter() - started, now)
        if spans is not None:
            spans.end([(r.raw, r.error) for r in step.rejected])

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

    async def lag(self) -> list[tuple[str, int, int]]:
        """Lag per assigned partition, against the offset after the last committed transaction."""
        if self.consumer is None:
            return []
        return await group_lag(self.consumer, lambda tp: self.next_offset.get(tp.partition))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, stage: TransactionalStage) -> None:
        self.stage = stage

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.stage.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.stage.rt.metrics.rebalances.inc()
        await self.stage.on_assigned(assigned)
