"""The worker runtime: turns each domain's pure rules into Faust agents, tables and outputs.

Stage one (per domain): raw topic -> ``rules.process`` -> dedupe -> ``rules.route`` -> produce. Stage two (per
:class:`~app.core.records.TableRule`): feed topic -> ``fold`` -> changelog-backed table -> produce snapshots.
Any :class:`RecordError` (and any unexpected exception, as ``INTERNAL-ERROR``) sends the original record to the
domain's dead-letter topic and the agent goes on with the next record. Agents here are thin: every decision is
in the domain's pure functions, so this file is the only place that knows Faust.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import faust
import orjson

from app.core.catalog import Catalog
from app.core.clock import Clock, utc_now
from app.core.codecs import encode_json
from app.core.deadletter import deadletter_headers
from app.core.dedupe import SeenIds
from app.core.errors import EnrichError, RecordError
from app.core.metrics import Metrics
from app.core.records import DomainRules, Emit, Folded, Headers, RawRecord, TableRule
from app.settings import Settings

log = logging.getLogger("switchyard.runtime")


def normalize_headers(headers: Any) -> Headers:
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    return tuple((str(k), bytes(v) if v is not None else b"") for k, v in items)


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


def encode_value(value: Any) -> bytes | None:
    """Emit values: bytes as they are, ``None`` as a tombstone, anything else as JSON."""
    if value is None or isinstance(value, bytes):
        return value
    return encode_json(value)


def internal_error(exc: BaseException, stage: str) -> RecordError:
    """An unexpected exception, as a dead-letter error. Only the type is kept: its text may quote the record."""
    err = EnrichError(f"unexpected {type(exc).__name__} in {stage}", code="INTERNAL-ERROR")
    err.stage = stage
    return err


@dataclass
class DomainTable:
    domain: str
    rule: TableRule
    table: Any  # faust.Table (untyped library)

    def get(self, key: str) -> Any:
        raw = self.table.get(key.encode())
        return None if raw is None else orjson.loads(raw)


class Runtime:
    """Owns one ``faust.App`` and wires domains into it. Built once per worker process."""

    def __init__(
        self, app: faust.App, settings: Settings, catalog: Catalog, metrics: Metrics, clock: Clock = utc_now
    ):
        self.app = app
        self.settings = settings
        self.catalog = catalog
        self.metrics = metrics
        self.clock = clock
        self.tables: dict[tuple[str, str], DomainTable] = {}
        self._topics: dict[str, Any] = {}
        #: worker-wide helpers registered by domains (e.g. the webhook ingress), created once
        self.services: dict[str, Any] = {}

    # ---- topics and producing ------------------------------------------------------------------------------
    def topic(self, name: str) -> Any:
        """The Faust topic of catalog entry ``name`` (raw bytes in and out; codecs are ours)."""
        if name not in self._topics:
            spec = self.catalog.get(name)
            self._topics[name] = self.app.topic(
                self.settings.topic(spec.name),
                partitions=self.settings.topic_partitions,
                key_serializer="raw",
                value_serializer="raw",
            )
        return self._topics[name]

    async def emit_all(self, emits: Iterable[Emit]) -> None:
        """Produce ``emits`` and wait until the broker acknowledged every one of them."""
        futures = []
        for e in emits:
            key = e.key.encode() if isinstance(e.key, str) else e.key
            fut = await self.topic(e.topic).send(
                key=key, value=encode_value(e.value), headers=list(e.headers)
            )
            futures.append(fut)
            self.metrics.outputs.labels(e.topic).inc()
        for fut in futures:
            await fut

    async def deadletter(self, domain: str, raw: RawRecord, err: RecordError) -> None:
        spec = self.catalog.deadletter_topic(domain)
        headers = deadletter_headers(raw, err, self.clock())
        fut = await self.topic(spec.name).send(key=raw.key, value=raw.value, headers=list(headers))
        await fut
        self.metrics.events_rejected.labels(domain, err.stage, err.code).inc()
        self.metrics.dlq_writes.labels(spec.name).inc()
        log.warning(
            "dead-lettered domain=%s code=%s stage=%s path=%s source=%s[%s]@%s",
            domain,
            err.code,
            err.stage,
            err.path or "-",
            raw.topic,
            raw.partition,
            raw.offset,
        )

    # ---- stage one -----------------------------------------------------------------------------------------
    def stage_one(self, rules: DomainRules) -> None:
        """Register the raw-topic agent of ``rules``' domain."""
        domain = rules.name
        source = self.topic(self.catalog.raw_topic(domain).name)
        seen = SeenIds(self._seen_table(domain), self.settings.dedupe_ttl_seconds)

        async def handle(raw: RawRecord) -> None:
            started = time.perf_counter()
            now = self.clock()
            self.metrics.events_in.labels(domain).inc()
            self.metrics.last_event_time.labels(domain).set(now.timestamp())
            try:
                processed = rules.process(raw, now)
            except RecordError as err:
                await self.deadletter(domain, raw, err)
                return
            except Exception as exc:  # a bug must not stop the stream: dead-letter and carry on
                log.exception(
                    "unexpected error in %s.process at %s[%s]@%s",
                    domain,
                    raw.topic,
                    raw.partition,
                    raw.offset,
                )
                await self.deadletter(domain, raw, internal_error(exc, "validate"))
                return
            if seen.seen(processed.event_id, now):
                self.metrics.dedupe_hits.labels(domain).inc()
                return
            try:
                emits = rules.route(processed, now)
            except RecordError as err:
                await self.deadletter(domain, raw, err)
                return
            except Exception as exc:
                log.exception("unexpected error in %s.route", domain)
                await self.deadletter(domain, raw, internal_error(exc, "enrich"))
                return
            await self.emit_all(emits)
            seen.mark(processed.event_id, now)
            self.metrics.events_accepted.labels(domain, processed.event_type).inc()
            self._observe_lag(domain, processed.event_time, raw, now)
            self.metrics.processing_seconds.labels(domain).observe(time.perf_counter() - started)

        async def agent(stream: Any) -> None:
            async for event in stream.events():
                await handle(raw_from_message(event.message))

        self.app.agent(source, name=f"{domain}.stage-one")(agent)

    def _observe_lag(self, domain: str, event_time: datetime | None, raw: RawRecord, now: datetime) -> None:
        if event_time is not None:
            lag = (now - event_time).total_seconds()
        elif raw.timestamp_ms:
            lag = now.timestamp() - raw.timestamp_ms / 1000
        else:
            return
        self.metrics.e2e_lag_seconds.labels(domain).observe(max(lag, 0.0))

    def _seen_table(self, domain: str) -> Any:
        ttl_ms = str(self.settings.dedupe_ttl_seconds * 1000)
        return self.app.Table(
            f"{domain}-seen",
            partitions=self.settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
            extra_topic_configs={"cleanup.policy": "compact,delete", "retention.ms": ttl_ms},
        )

    # ---- stage two -----------------------------------------------------------------------------------------
    def fold_tables(self, rules: DomainRules) -> None:
        for rule in rules.tables:
            self._fold_table(rules.name, rule)

    def _fold_table(self, domain: str, rule: TableRule) -> None:
        table = self.app.Table(
            f"{domain}-{rule.name}",
            partitions=self.settings.topic_partitions,
            key_type=bytes,
            value_type=bytes,
        )
        holder = DomainTable(domain, rule, table)
        table_label = f"{domain}.{rule.name}"
        self.tables[(domain, rule.name)] = holder
        source = self.topic(rule.source_topic)

        async def handle(raw: RawRecord) -> None:
            now = self.clock()
            if raw.key is None:
                await self.deadletter(
                    domain, raw, EnrichError("table feed record has no key", code="FEED-NO-KEY")
                )
                return
            key = raw.key.decode("utf-8", "replace")
            try:
                value = orjson.loads(raw.value) if raw.value else None
                folded: Folded = rule.fold(holder.get(key), value, now)
            except RecordError as err:
                await self.deadletter(domain, raw, err)
                return
            except Exception as exc:
                log.exception(
                    "unexpected error folding %s.%s key partition %s", domain, rule.name, raw.partition
                )
                await self.deadletter(domain, raw, internal_error(exc, "enrich"))
                return
            # Emits are acknowledged before the state is stored: a crash in between re-folds the value on
            # redelivery and re-emits (idempotent snapshots), where the other order would lose the emits.
            await self.emit_all(folded.emits)
            if folded.changed:
                if folded.state is None:
                    table.pop(raw.key, None)
                else:
                    table[raw.key] = encode_json(folded.state)
            outcome = folded.outcome or ("applied" if folded.changed else "unchanged")
            self.metrics.table_updates.labels(table_label, outcome).inc()

        async def agent(stream: Any) -> None:
            async for event in stream.events():
                await handle(raw_from_message(event.message))

        self.app.agent(source, name=f"{domain}.{rule.name}")(agent)

    def table(self, domain: str, name: str) -> DomainTable:
        return self.tables[(domain, name)]
