"""The worker runtime: every catalog domain's pure rules on the one stage engine, driven by Faust agents.

:class:`Runtime` is also the facade the rest of the app uses instead of Faust (pages, background tasks, shutdown
hooks, table ownership): only the :mod:`app.core.runtime` package imports Faust.

Stage one (per domain): raw topic -> :meth:`Engine.stage_one` -> emits acknowledged -> dedupe marks stored. Stage
two (per :class:`~app.core.records.TableRule`): feed topic -> :meth:`Engine.fold` -> emits acknowledged -> table
writes stored. The catalog's ``exactly_once`` flag picks the stage-one driver: this module's at-least-once agent,
or :class:`app.core.runtime.eos.TransactionalStage` on Kafka transactions; both run the same step and the same
:class:`~app.core.engine.Accounting`.

Why the agents do not use ``Topic.send`` or ``table[key] = value``: per record, ``Topic.send`` awaits the app's
``maybe_start_producer`` (a ``@stampede`` that yields to the event loop three times a call) and a table write
re-resolves Faust's current event, encodes through the codec registry and buffers one changelog send each. Here a
batch's records go straight to the started producer, and a table write is a RocksDB put in the partition the record
came from plus one changelog record to that same partition: Faust's changelog format, partition and persisted
offsets (so recovery and standbys are unchanged), one persisted offset per partition per batch.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import faust
import orjson
from faust.types import TP
from prometheus_client import Counter

from app.core.avro import reframe_confluent
from app.core.catalog import Catalog
from app.core.clock import Clock, utc_now
from app.core.dedupe import is_fresh, stamp
from app.core.engine import Accounting, Engine, Step, Write, encoded
from app.core.metrics import Metrics
from app.core.records import DomainRules, Emit, RawRecord, TableRule, normalize_headers
from app.core.tracing import NO_TRACING, Tracing
from app.settings import Settings

log = logging.getLogger("switchyard.runtime")

#: Micro-batch of the agents: at most this many records, or what arrived within the wait.
BATCH_MAX = 500
BATCH_WAIT_SECONDS = 0.01
#: A batch whose handling failed is tried again after this long, the wait doubling up to the cap.
RETRY_FIRST_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0


async def handled(
    stage: str,
    events: list[Any],
    handle: Callable[[list[Any]], Awaitable[None]],
    retries: Counter,
    sleep: Callable[[float], Awaitable[Any]],
    abandon: Callable[[], bool],
) -> None:
    """Run ``handle(events)`` until it succeeds, or until the worker stops or hands its partitions back: then the
    events are withheld.

    A record's own faults never get here: the engine dead-letters them. What does is the machinery failing under
    a whole batch (a producer send refused, a store write), and Faust's ``take_events`` acknowledges a batch when
    its generator is closed, however the loop left it: a batch whose handling raised would be committed
    unprocessed, its records lost without a trace. So the same batch is tried again after a doubling wait
    (``retries`` counts each failure, by ``stage``, for the alert), and the partitions behind it wait, as they must
    to keep their order. The sends of a failed attempt may go out again: at-least-once, deduplicated downstream
    like any redelivery.

    ``sleep`` must return early once ``abandon()`` is true, and ``abandon`` say that the worker stops or its
    partitions are being revoked (:func:`retry_pause` and :func:`abandon_batches`). Faust's stop
    and its revocation both wait for every batch in flight to be acknowledged, so a batch still failing then is
    given up, :func:`withhold`-en, and left to the partition's next owner (this worker again, if it keeps the
    partition: after a rebalance the stream starts over from the committed offset). A cancelled attempt is withheld
    the same way.
    """
    delay = RETRY_FIRST_SECONDS
    try:
        while True:
            try:
                await handle(events)
                return
            except Exception as exc:
                first = events[0].message
                batch = f"stage={stage} records={len(events)} from={first.topic}[{first.partition}]@{first.offset}"
                retries.labels(stage).inc()
                log.error(
                    "batch failed %s error=%s: %s; retrying in %.1f s",
                    batch,
                    type(exc).__name__,
                    exc,
                    delay,
                    exc_info=delay == RETRY_FIRST_SECONDS,  # the traceback once, not every 30 s
                )
                await sleep(delay)
                if abandon():
                    log.warning(
                        "batch given up %s: the worker stops or hands its partitions back; not committed, the "
                        "partition's next owner processes it",
                        batch,
                    )
                    withhold(events)
                    return
                delay = min(delay * 2, RETRY_MAX_SECONDS)
    except BaseException:
        withhold(events)
        raise


def abandon_batches(app: Any) -> bool:
    """True when a batch still failing must be given up: ``app`` stops, or a rebalance stopped its flow to revoke
    partitions (both wait for the batches in flight to be acknowledged)."""
    return bool(app.should_stop or not app.consumer.flow_active)


async def retry_pause(app: Any, seconds: float) -> None:
    """Wait ``seconds`` before a failed batch is tried again, ending early once :func:`abandon_batches`."""
    deadline = time.monotonic() + seconds
    while not abandon_batches(app) and (left := deadline - time.monotonic()) > 0:
        await app.sleep(min(left, 0.25))


def withhold(events: Iterable[Any]) -> None:
    """Make sure this consumer never commits ``events``: the next owner of their partitions gets them again.

    Faust books an offset as committable when its message is acknowledged, unless the message says it already
    was; marked so here, the acknowledgement that closing ``take_events`` sends is a no-op, and the commit stops
    in front of the first of them.
    """
    for event in events:
        event.message.acked = True


def raw_from_message(message: Any) -> RawRecord:
    ts = getattr(message, "timestamp", None)
    return RawRecord(
        value=message.value,
        key=message.key,
        headers=normalize_headers(message.headers),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(ts * 1000) if ts else None,
    )


class TableIO:
    """Reads and batched writes of one Faust table whose keys and values are bytes, by explicit partition.

    A table is partitioned like the topic that writes it, so the partition a record came from is the partition of
    its key's state: reads go to that partition's store, writes to it and to the same changelog partition. Private
    Faust internals used (checked against faust-streaming 0.15.3, ``tests/unit/test_runtime_internals.py`` fails if
    they move): the RocksDB store's ``_db_for_partition`` and ``_key_index``, the memory store's ``data`` dict.
    """

    def __init__(self, table: Any) -> None:
        self.table = table

    @property
    def changelog(self) -> str:
        return str(self.table.changelog_topic.get_topic_name())

    def read(self, partition: int, key: bytes) -> bytes | None:
        store = self.table.data
        db_for = getattr(store, "_db_for_partition", None)
        if db_for is None:  # memory:// store: one dict
            value: bytes | None = store.data.get(key)
            return value
        found: bytes | None = db_for(partition).get(key)
        return found

    def get(self, key: str) -> Any:
        """The decoded state of ``key``, from whichever local partition holds it (HTTP queries)."""
        raw = self.table.get(key.encode())
        return None if raw is None else orjson.loads(raw)

    def store(self, writes: Mapping[bytes, Write]) -> None:
        """Apply ``writes`` to the local store (``None`` deletes)."""
        store = self.table.data
        db_for = getattr(store, "_db_for_partition", None)
        for key, w in writes.items():
            if db_for is None:
                if w.value is None:
                    store.data.pop(key, None)
                else:
                    store.data[key] = w.value
                continue
            db = db_for(w.partition)
            if w.value is None:
                db.delete(key)
                store._key_index.pop(key, None)
            else:
                db.put(key, w.value)
                store._key_index[key] = w.partition

    def persist_on_ack(self, futures: Mapping[int, Any]) -> None:
        """When the last changelog record of a partition is acknowledged, record its offset as persisted (what
        Faust's recovery starts from), once per partition per batch instead of once per write."""
        store = self.table.data
        topic = self.changelog

        def persist(partition: int) -> Any:
            def done(fut: Any) -> None:
                if not fut.cancelled() and fut.exception() is None:
                    store.set_persisted_offset(TP(topic, partition), fut.result().offset)

            return done

        for partition, fut in futures.items():
            fut.add_done_callback(persist(partition))


@dataclass
class DomainTable:
    domain: str
    rule: TableRule
    io: TableIO

    @property
    def table(self) -> Any:  # faust.Table (untyped library)
        return self.io.table

    def get(self, key: str) -> Any:
        return self.io.get(key)

    def held_partitions(self, default_total: int) -> tuple[list[int], int]:
        """The partitions of this table this worker owns (by its changelog topic) and how many there are in all."""
        app = self.table.app
        changelog = self.io.changelog
        held = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == changelog)
        total = app.consumer.topic_partitions(changelog) or default_total
        return held, int(total)


class Runtime:
    """Owns one ``faust.App`` and wires domains into it. Built once per worker process."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        catalog: Catalog,
        metrics: Metrics,
        clock: Clock = utc_now,
        avro_ids: Mapping[str, int] | None = None,
        tracing: Tracing = NO_TRACING,
    ):
        self.app = app
        self.settings = settings
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self.tables: dict[tuple[str, str], DomainTable] = {}
        self._topics: dict[str, Any] = {}
        self._wire_names: dict[str, str] = {}
        #: worker-wide helpers registered by domains (e.g. the webhook ingress), created once
        self.services: dict[str, Any] = {}
        #: catalog topic -> schema registry id of its Avro value (:mod:`app.core.registry`); empty = no registry
        self.avro_ids: Mapping[str, int] = avro_ids or {}
        self.engine = Engine(
            self.deadletter_topic, self.encoded, catalog.compacted_topics(), settings.max_record_bytes
        )
        self.accounting = Accounting(metrics, self.deadletter_topic)
        #: consumers that are not Faust's (exactly-once stages, the CRM sink): awaited for lag by the monitor
        self.lag_sources: list[Callable[[], Awaitable[list[tuple[str, int, int]]]]] = []
        #: OpenTelemetry spans of every hop (:mod:`app.core.tracing`); checked once per batch when off
        self.tracing = tracing

    # ---- topics and producing ------------------------------------------------------------------------------
    def deadletter_topic(self, domain: str) -> str:
        return self.catalog.deadletter_topic(domain).name

    def wire_name(self, catalog_name: str) -> str:
        """The Kafka topic of catalog entry ``catalog_name`` (prefix applied)."""
        name = self._wire_names.get(catalog_name)
        if name is None:
            name = self._wire_names[catalog_name] = self.settings.topic(self.catalog.get(catalog_name).name)
        return name

    def encoded(self, emit: Emit) -> Emit:
        """``emit`` ready for the wire (:func:`~app.core.engine.encoded`), an Avro value in Confluent framing where
        the schema registry gave its topic an id."""
        out = encoded(emit)
        schema_id = self.avro_ids.get(emit.topic)
        if schema_id is None or not isinstance(out.value, bytes):
            return out
        return Emit(out.topic, out.key, reframe_confluent(out.value, schema_id), out.headers)

    def topic(self, name: str) -> Any:
        """The Faust topic of catalog entry ``name`` (raw bytes in and out; codecs are ours)."""
        if name not in self._topics:
            self._topics[name] = self.app.topic(
                self.wire_name(name),
                partitions=self.settings.topic_partitions,
                key_serializer="raw",
                value_serializer="raw",
            )
        return self._topics[name]

    async def publish(self, emits: Iterable[Emit]) -> list[Awaitable[Any]]:
        """Hand encoded ``emits`` to the started producer; returns the futures of their acknowledgements."""
        producer = await self.app.maybe_start_producer()
        futures = []
        for e in emits:
            key = e.key.encode() if isinstance(e.key, str) else e.key
            futures.append(
                await producer.send(
                    self.wire_name(e.topic), key, e.value, None, None, list(e.headers) or None
                )
            )
        return futures

    async def emit_all(self, emits: Iterable[Emit]) -> None:
        """Produce ``emits`` and wait until the broker acknowledged every one of them."""
        for fut in await self.publish([self.encoded(e) for e in emits]):
            await fut

    async def write_table(self, io: TableIO, writes: Mapping[bytes, Write]) -> None:
        """Store ``writes`` locally and send their changelog records (Faust's format: raw key, raw value, the
        write's partition). They are not awaited here: Faust flushes the producer before it commits offsets."""
        if not writes:
            return
        io.store(writes)
        producer = await self.app.maybe_start_producer()
        last: dict[int, Any] = {}
        topic = io.changelog
        for key, w in writes.items():
            last[w.partition] = await producer.send(topic, key, w.value, w.partition, None, None)
        io.persist_on_ack(last)

    # ---- drivers -------------------------------------------------------------------------------------------
    def register_domain(self, rules: DomainRules) -> None:
        """Stage one on the driver the catalog asks for, then one fold agent per table."""
        if self.catalog.domains[rules.name].exactly_once:
            from app.core.runtime.eos import TransactionalStage  # eos builds on this module

            TransactionalStage(self, rules).register()
        else:
            self.stage_one(rules)
        self.fold_tables(rules)

    def stage_one(self, rules: DomainRules) -> None:
        """Register the at-least-once raw-topic agent of ``rules``' domain.

        Records are taken in micro-batches (:meth:`_batch_agent`): every output of the batch is sent, the batch
        waits once for all acknowledgements, and only then are the event ids marked seen (each in its own record's
        partition of the ``<domain>-seen`` table).
        """
        domain = rules.name
        source = self.topic(self.catalog.raw_topic(domain).name)
        seen = TableIO(self._seen_table(domain))
        ttl = self.settings.dedupe_ttl_seconds

        async def handle(events: list[Any]) -> None:
            started = time.perf_counter()
            now = self.clock()
            records = [raw_from_message(event.message) for event in events]
            spans = self.tracing.consume("stage-one", domain, records) if self.tracing.enabled else None
            step = self.engine.stage_one(
                rules,
                records,
                lambda raw, event_id: is_fresh(seen.read(raw.partition, event_id.encode()), now, ttl),
                now,
                spans.carry if spans is not None else None,
            )
            await self._acknowledged(step)
            marked = stamp(now)
            await self.write_table(
                seen, {eid.encode(): Write(raw.partition, marked, raw.offset) for raw, eid in step.marks}
            )
            self.accounting.stage_one(domain, step, time.perf_counter() - started, now)
            if spans is not None:
                spans.end([(r.raw, r.error) for r in step.rejected])

        self._batch_agent(source, f"{domain}.stage-one", handle)

    async def _acknowledged(self, step: Step) -> None:
        for fut in await self.publish(step.emits):
            await fut

    def _seen_table(self, domain: str) -> Any:
        ttl_ms = str(self.settings.dedupe_ttl_seconds * 1000)
        return self.app.Table(
            f"{domain}-seen",
            partitions=self.settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
            extra_topic_configs={"cleanup.policy": "compact,delete", "retention.ms": ttl_ms},
        )

    def fold_tables(self, rules: DomainRules) -> None:
        for rule in rules.tables:
            self._fold_table(rules.name, rule)

    def _fold_table(self, domain: str, rule: TableRule) -> None:
        io = TableIO(
            self.app.Table(
                f"{domain}-{rule.name}",
                partitions=self.settings.topic_partitions,
                key_type=bytes,
                value_type=bytes,
            )
        )
        self.tables[(domain, rule.name)] = DomainTable(domain, rule, io)
        source = self.topic(rule.source_topic)

        def state_of(partition: int, key: bytes) -> Any:
            stored = io.read(partition, key)
            return None if stored is None else orjson.loads(stored)

        async def handle(events: list[Any]) -> None:
            """Emits are acknowledged before any state is stored: a crash in between re-folds the values on
            redelivery and re-emits (idempotent snapshots and commands), where the other order would lose them."""
            now = self.clock()
            records = [raw_from_message(e.message) for e in events]
            spans = (
                self.tracing.consume(f"fold:{rule.name}", domain, records) if self.tracing.enabled else None
            )
            step = self.engine.fold(
                domain, rule, records, state_of, now, spans.carry if spans is not None else None
            )
            await self._acknowledged(step)
            await self.write_table(io, step.writes)
            self.accounting.fold(domain, rule.name, step)
            if spans is not None:
                spans.end([(r.raw, r.error) for r in step.rejected])

        self._batch_agent(source, f"{domain}.{rule.name}", handle)

    def _batch_agent(self, source: Any, name: str, handle: Callable[[list[Any]], Awaitable[None]]) -> None:
        """One Faust agent on ``source`` handing ``handle`` micro-batches: up to ``BATCH_MAX`` events, or what
        arrived within ``BATCH_WAIT_SECONDS``. Faust acks a batch's events when the loop asks for the next batch,
        after ``handle`` returned, so offsets commit past a batch only once it has been handled; a batch whose
        handling fails is retried, or withheld from the commit if the worker stops or hands its partitions back
        first (:func:`handled`)."""

        pause, abandon = partial(retry_pause, self.app), partial(abandon_batches, self.app)

        async def agent(stream: Any) -> None:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WAIT_SECONDS):
                await handled(name, list(events), handle, self.metrics.batch_retries, pause, abandon)

        self.app.agent(source, name=name)(agent)

    def table(self, domain: str, name: str) -> DomainTable:
        return self.tables[(domain, name)]

    # ---- facade: what views, the ingress and the sinks need of Faust ----------------------------------------
    def page(self, path: str, name: str) -> Callable[[Any], Any]:
        """Decorator serving a view ``async (view, request, **match) -> response`` at ``path`` (Faust's web)."""
        return cast("Callable[[Any], Any]", self.app.page(path, name=name))

    def task(self, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run`` as a background task of the worker, started with it and stopped with it."""
        self.app.task(run)

    def on_shutdown(self, close: Callable[[], Awaitable[None]]) -> None:
        """Await ``close`` when the worker stops, before Faust's own services stop (the producer among them)."""

        async def handler(sender: Any, *args: Any, **kwargs: Any) -> None:
            await close()

        signal: Any = self.app.on_before_shutdown  # faust types handlers too narrowly for coroutines
        signal.connect(handler)


class _Worker(faust.Worker):
    """Faust's worker without its terminal spinner. To spin on every log message, faust sets the root logger to
    DEBUG and filters at the handler, so at WARNING every debug call of aiokafka and Faust still built its record:
    about 14 per event, 115-185 us of CPU. Here the root logger keeps the configured level. Once started, the
    start-up heap is frozen (:func:`settle_heap`)."""

    def __init__(self, app: Any, *, young_threshold: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.young_threshold = young_threshold

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        self.spinner = None

    async def on_startup_finished(self) -> None:
        await super().on_startup_finished()
        settle_heap(self.young_threshold)


def tune_gc(young_threshold: int) -> None:
    """Collect the young generation every ``young_threshold`` allocations instead of every 700 (0: leave the
    interpreter's thresholds). A worker's garbage is short-lived: a batch's records, events and futures live for
    one step. At 700 they are still alive at most collections, get promoted, and the old generations' collections
    then scan the whole heap: measured on a Phoenix drain, 12 full collections of up to 136 ms each and about a
    fifth of the worker's CPU.

    The old generations are collected often enough that garbage promoted into them cannot pile up: with the
    interpreter's (20, 100) behind a young threshold of 50,000, a minute of mixed load grew the worker from 174 to
    219 MB and still rising (the reliability suite's memory check); with (10, 5) it went from 163 to 171 MB, for
    a few per cent more CPU than (20, 100) on drains run side by side and still about a fifth less than the
    interpreter's policy. Most of what piled up was one reference cycle per batch with a dead letter, since broken
    (:func:`app.core.errors.detached`); the (10, 5) bound stays for whatever cycle the next change brings."""
    if young_threshold:
        gc.set_threshold(young_threshold, 10, 5)


def settle_heap(young_threshold: int) -> None:
    """Once the worker has started (modules imported, tables opened, first assignment done), move everything alive
    into the permanent generation: the collector no longer scans start-up objects that live as long as the
    process. Skipped with the interpreter's thresholds (``young_threshold`` 0), which keeps its whole policy."""
    if young_threshold:
        gc.collect()
        gc.freeze()


def run_worker(runtime: Runtime, log_level: str) -> None:
    """Run ``runtime``'s app as a worker process until SIGTERM/SIGINT."""
    tune_gc(runtime.settings.gc_young_threshold)
    worker = _Worker(
        runtime.app,
        young_threshold=runtime.settings.gc_young_threshold,
        loglevel=log_level.lower(),
        quiet=True,
    )
    worker.execute_from_commandline()
