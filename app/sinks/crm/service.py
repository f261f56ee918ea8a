"""The CRM sink inside the worker: ``crm.commands`` -> :class:`CrmSink` -> offsets committed.

A poll batch (up to ``MAX_BATCH`` commands across this worker's partitions) goes to ``CrmSink.write`` in one piece,
so a backlog batches up to 100 contacts per call. ``write`` returns only when every command was acknowledged by the
CRM or dead-lettered; only then are dead letters produced (and acknowledged by Kafka) and the batch's offsets
committed. A crash anywhere before the commit redelivers the batch, and the commands' idempotency keys make the
second delivery a no-op at the CRM: an outage or a kill loses nothing and applies nothing twice.

During a long CRM outage ``write`` keeps retrying without polling, so the consumer's ``max_poll_interval`` is set
to a day: leaving the group would only move the same wait to another worker.

Dead letters keep the command's bytes untouched (``dlq replay`` sends them back to ``crm.commands``) and carry the
CRM's answer, scrubbed of the values we sent, in the error headers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pydantic import ValidationError as PydanticValidationError

from app.core.deadletter import deadletter_headers, fitted
from app.core.errors import DecodeError, RecordError, SinkRefused, detached
from app.core.kafka import group_lag, raw_of
from app.core.records import RawRecord
from app.core.runtime import Runtime
from app.core.tracing import RecordSpans
from app.core.validation import from_pydantic
from app.sinks.crm.commands import CrmCommand
from app.sinks.crm.hooks import PrometheusHooks
from app.sinks.crm.metrics import CrmMetrics
from app.sinks.crm.sink import CrmSink, DeadLetter, build_sink

log = logging.getLogger("switchyard.crm")

MAX_BATCH = 5000
DAY_MS = 24 * 3600 * 1000
STATUS_HEADER = "switchyard.crm.status"


def parse_command(raw: RawRecord) -> CrmCommand:
    """A command record -> :class:`CrmCommand`, or a :class:`RecordError` naming the field and rule."""
    if not raw.value:
        raise DecodeError("command record has no value", code="DECODE-EMPTY")
    try:
        return CrmCommand.model_validate_json(raw.value)
    except PydanticValidationError as exc:
        first = exc.errors(include_input=False)[0]
        if first["type"] == "json_invalid":
            raise DecodeError("command is not valid JSON", code="DECODE-JSON") from None
        raise from_pydantic(exc) from None


def sink_error(dead: DeadLetter) -> SinkRefused:
    return SinkRefused(dead.body[:500], code=dead.code)


class CrmSinkService:
    def __init__(
        self, runtime: Runtime, sink: CrmSink | None = None, metrics: CrmMetrics | None = None
    ) -> None:
        self.rt = runtime
        #: the sink's own series, on the worker's registry unless given (one set per registry)
        self.metrics = metrics or CrmMetrics(runtime.metrics.registry)
        self.sink = sink or build_sink(
            runtime.settings, hooks=PrometheusHooks(self.metrics), tracing=runtime.tracing
        )
        s = runtime.settings
        self.source = s.topic(runtime.catalog.get("crm.commands").name)
        self.dlq = s.topic(runtime.catalog.deadletter_topic("crm").name)
        self.group_id = f"{s.app_id}-crm-sink"
        self.consumer: AIOKafkaConsumer | None = None
        #: per partition, the offset after the last command applied or dead-lettered (this group's commit)
        self.committed: dict[Any, int] = {}

    def register(self) -> None:
        self.rt.task(self.run)
        self.rt.lag_sources.append(self.lag)

    async def lag(self) -> list[tuple[str, int, int]]:
        """(topic, partition, commands behind) per assigned partition: the log's end offset minus this group's
        committed offset, what Kafka's ConsumerGroupCommand shows (:func:`~app.core.kafka.group_lag`). Their sum
        is ``switchyard_crm_queue_depth``: every command not yet applied or dead-lettered, fetched or not."""
        if self.consumer is None:
            return []
        out = await group_lag(self.consumer, lambda tp: self.committed.get(tp, 0))
        self.metrics.queue_depth.set(sum(behind for _, _, behind in out))
        return out

    async def run(self) -> None:
        s = self.rt.settings
        consumer = AIOKafkaConsumer(
            self.source,
            **s.kafka_client_options(),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=MAX_BATCH,
            max_poll_interval_ms=DAY_MS,
        )
        producer = AIOKafkaProducer(
            **s.kafka_client_options(), **s.producer_options(), acks="all", enable_idempotence=True
        )
        await consumer.start()
        await producer.start()
        self.consumer = consumer
        for tp in consumer.assignment():
            self.committed[tp] = await consumer.committed(tp) or 0
        log.info("CRM sink started source=%s crm=%s group=%s", self.source, s.crm_base_url, self.group_id)
        try:
            while True:
                records, offsets = await self._poll(consumer)
                for tp in consumer.assignment() - self.committed.keys():  # assigned since: where the group is
                    self.committed[tp] = await consumer.committed(tp) or 0
                if not records:
                    continue
                started = time.perf_counter()
                await self._handle(producer, records)
                await consumer.commit(offsets)
                self.committed.update(offsets)
                self._account(len(records), time.perf_counter() - started)
        finally:
            await consumer.stop()
            await producer.stop()
            await self.sink.adapter.aclose()

    @staticmethod
    async def _poll(consumer: AIOKafkaConsumer) -> tuple[list[Any], dict[Any, int]]:
        """Everything fetchable now, up to ``MAX_BATCH``: one fetch is often a fraction of a backlog, and the
        planner can only batch (100 contacts per call) what it is given at once."""
        records: list[Any] = []
        offsets: dict[Any, int] = {}
        timeout = 500
        while len(records) < MAX_BATCH:
            batches = await consumer.getmany(timeout_ms=timeout, max_records=MAX_BATCH - len(records))
            got = [(tp, recs) for tp, recs in batches.items() if recs]
            if not got:
                break
            for tp, recs in got:
                records.extend(recs)
                offsets[tp] = recs[-1].offset + 1
            timeout = 20
        records.sort(key=lambda r: (r.partition, r.offset))
        return records, offsets

    def _account(self, n: int, seconds: float) -> None:
        """Events in and processing time of the sink's group, as the stage engine books its own (domain ``crm``)."""
        m = self.rt.metrics
        m.events_in.labels("crm").inc(n)
        m.last_event_time.labels("crm").set(self.rt.clock().timestamp())
        histogram = m.processing_seconds.labels("crm")
        for _ in range(n):
            histogram.observe(seconds)

    async def _handle(self, producer: AIOKafkaProducer, records: list[Any]) -> None:
        """Traced, every command record gets a span (the child of the fold span that sent it), the CRM calls are
        client spans under them, and a dead letter ends its span in ERROR."""
        commands: list[CrmCommand] = []
        raws: dict[str, RawRecord] = {}
        futures = []
        batch = [raw_of(rec) for rec in records]
        tracing = self.rt.tracing
        spans = tracing.consume("crm-sink", "crm", batch) if tracing.enabled else None
        rejected: list[tuple[RawRecord, RecordError]] = []
        for raw in batch:
            try:
                cmd = parse_command(raw)
            except RecordError as err:
                rejected.append((raw, detached(err)))
                futures.append(await self._deadletter(producer, raw, err, spans=spans))
                continue
            commands.append(cmd)
            raws[cmd.command_id] = raw
        by_command = {cid: spans.span_of(raw) for cid, raw in raws.items()} if spans is not None else None
        for dead in await self.sink.write(commands, by_command):
            raw = raws[dead.command.command_id]
            refused = sink_error(dead)
            rejected.append((raw, refused))
            futures.append(await self._deadletter(producer, raw, refused, status=dead.status, spans=spans))
        for fut in futures:
            await fut
        if spans is not None:
            spans.end(rejected)

    async def _deadletter(
        self,
        producer: AIOKafkaProducer,
        raw: RawRecord,
        err: RecordError,
        status: int | None = None,
        spans: RecordSpans | None = None,
    ) -> Any:
        trace = spans.carry_of(raw) if spans is not None else ()
        headers = deadletter_headers(raw, err, self.rt.clock(), trace)
        if status is not None:
            headers = (*headers, (STATUS_HEADER, str(status).encode()))
        key, value, headers = fitted(raw, headers, self.rt.settings.max_record_bytes)
        self.rt.metrics.events_rejected.labels("crm", err.stage, err.code).inc()
        self.rt.metrics.dlq_writes.labels("crm.deadletter").inc()
        log.warning(
            "CRM command dead-lettered code=%s stage=%s path=%s source=%s[%s]@%s",
            err.code,
            err.stage,
            err.path or "-",
            raw.topic,
            raw.partition,
            raw.offset,
        )
        return await producer.send(self.dlq, value, key=key, headers=list(headers))
