"""Variant Q: the same domain functions as the worker, run by Quix Streams (the peer it is compared with).

Run as its own process (``python -m bench.quixapp DOMAIN RAW_TOPIC GROUP STATE_DIR``, see :func:`main`) so that
its CPU is read from ``/proc`` exactly as the worker's is; ``bench/peer.py`` starts and measures it, and creates
its topics beforehand under the names Quix gives them. It is written the way Quix's
documentation writes applications, not as a copy of the worker:

- one :class:`~quixstreams.Application` with RocksDB state and changelog topics (Quix's defaults but for the
  JSON codec, see below), a plaintext connection to ``SWITCHYARD_BROKER`` (the bench's brokers), the
  catalog's processing guarantee (``exactly-once`` for a domain the catalog marks so, else ``at-least-once``);
- stage one is ``app.dataframe(raw).apply(stage_one, stateful=True, metadata=True, expand=True)``: the domain's
  ``process``, a dedupe on the event id in Quix's own state (a per-write TTL of the dedupe window), ``route``
  and the dead letters, each emit one row;
- rows go out with ``to_topic`` (topic chosen per row, key and headers per row);
- a table whose feed is re-keyed by stage one (a catalog ``feed`` topic sent by stage one, e.g.
  ``phoenix.sessions.by-coach``) is fed by ``group_by(<the emit's key>)``: Quix's repartition topic takes the
  place of our feed topic, and the fold runs in a stateful ``apply`` behind it;
- a table whose source is an output topic (``phoenix.sessions.enriched``) or a feed its folds write
  (``lara.compliance.feed``) is a second ``app.dataframe`` on that topic, as the worker's stage two is.

A fold's state is the key's whole JSON state in Quix's state (``state.get`` / ``state.set``, encoded with the
same ``encode_json`` as the worker's tables), so both pay the same decode and encode per fold.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from quixstreams import Application, State
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.models import Serializer, Topic
from quixstreams.models.serializers import SerializationContext
from quixstreams.state.rocksdb import RocksDBOptions

from app.core.catalog import Catalog, catalog_of
from app.core.clock import utc_now
from app.core.codecs import encode_json
from app.core.deadletter import deadletter_headers
from app.core.domain import load_domain
from app.core.engine import encode_value, internal_error
from app.core.errors import RecordError
from app.core.records import DomainRules, Emit, RawRecord, TableRule, normalize_headers
from app.settings import Settings
from bench.peer import rekeyed_tables

#: the key a fold keeps the table key's state under, inside Quix's per-message-key state
STATE = "state"


@dataclass(frozen=True, slots=True)
class Out:
    """One record to produce: catalog topic name, key and value bytes as the worker would write them."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


class OutValue(Serializer):
    """Writes an :class:`Out` row's value bytes: rows are encoded once, by the rules. ``None`` is a tombstone
    (Quix's base type says ``str | bytes``, but the producer passes ``None`` through to Kafka as one)."""

    def __call__(self, value: Out, ctx: SerializationContext) -> bytes | None:  # type: ignore[override]
        return value.value


def outs(emits: Iterable[Emit]) -> list[Out]:
    out = []
    for e in emits:
        key = e.key.encode() if isinstance(e.key, str) else e.key
        out.append(Out(e.topic, key, encode_value(e.value), tuple(e.headers)))
    return out


def stage_one(
    rules: DomainRules, deadletter: str, ttl: timedelta
) -> Callable[[bytes | None, bytes | None, int, Any, State[Any, Any]], list[Out]]:
    def apply(
        value: bytes | None, key: bytes | None, timestamp: int, headers: Any, state: State[Any, Any]
    ) -> list[Out]:
        raw = RawRecord(value=value, key=key, headers=normalize_headers(headers), timestamp_ms=timestamp)
        now = utc_now()
        try:
            processed = rules.process(raw, now)
            if state.get(processed.event_id) is not None:
                return []
            emits = rules.route(processed, now)
        except RecordError as err:
            return [Out(deadletter, key, value, tuple(deadletter_headers(raw, err, utc_now())))]
        except Exception as exc:
            return [
                Out(
                    deadletter,
                    key,
                    value,
                    tuple(deadletter_headers(raw, internal_error(exc, "validate"), now)),
                )
            ]
        state.set(processed.event_id, 1, ttl=ttl)
        return outs(emits)

    return apply


def folder(rule: TableRule) -> Callable[[bytes | None, State[Any, Any]], list[Out]]:
    def apply(value: bytes | None, state: State[Any, Any]) -> list[Out]:
        now = utc_now()
        try:
            folded = rule.fold(state.get(STATE), orjson.loads(value) if value else None, now)
        except RecordError:
            return []
        if folded.changed:
            if folded.state is None:
                state.delete(STATE)
            else:
                state.set(STATE, folded.state)
        return outs(folded.emits)

    return apply


def _headers(value: Out, key: Any, timestamp: int, headers: Any) -> list[tuple[str, bytes]]:
    return list(value.headers)


def _to(topic: str) -> Callable[[Out], bool]:
    return lambda o: o.topic == topic


def _key(value: Out) -> bytes | None:
    return value.key


def build(app: Application, settings: Settings, catalog: Catalog, rules: DomainRules, raw_topic: str) -> None:
    """Every dataframe of the domain on ``app``: stage one on ``raw_topic``, then one per table."""
    domain = rules.name
    names = [t.name for t in catalog.topics.values() if t.domain in (domain, "crm") and t.role != "raw"]
    topics: dict[str, Topic] = {
        n: app.topic(
            settings.topic(n),
            key_serializer="bytes",
            value_serializer=OutValue(),
            key_deserializer="bytes",
            value_deserializer="bytes",
        )
        for n in names
    }

    def send(rows: StreamingDataFrame) -> None:
        rows.set_headers(_headers).to_topic(lambda v, k, t, h: topics[v.topic], key=_key)

    raw = app.topic(raw_topic, key_deserializer="bytes", value_deserializer="bytes")
    deadletter = catalog.deadletter_topic(domain).name
    ttl = timedelta(seconds=settings.dedupe_ttl_seconds)
    rows = app.dataframe(raw).apply(
        stage_one(rules, deadletter, ttl), stateful=True, metadata=True, expand=True
    )
    rekeyed = rekeyed_tables(catalog, rules)
    skip = {t.source_topic for t in rekeyed}
    send(rows.filter(lambda o: o.topic not in skip))
    for table in rekeyed:
        feed = rows.filter(_to(table.source_topic))
        grouped = feed.group_by(
            _key,
            name=table.name,
            key_serializer="bytes",
            key_deserializer="bytes",
            value_serializer=OutValue(),
            value_deserializer="bytes",
        )
        send(grouped.apply(folder(table), stateful=True, expand=True))
    for table in rules.tables:
        if table not in rekeyed:
            sdf = app.dataframe(topics[table.source_topic])
            send(sdf.apply(folder(table), stateful=True, expand=True))


def application(settings: Settings, group: str, state_dir: str, exactly_once: bool) -> Application:
    return Application(
        broker_address=settings.broker,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        processing_guarantee="exactly-once" if exactly_once else "at-least-once",
        rocksdb_options=RocksDBOptions(dumps=encode_json, loads=orjson.loads),
        loglevel="WARNING",
    )


def main(argv: Sequence[str]) -> int:
    """``python -m bench.quixapp DOMAIN RAW_TOPIC GROUP STATE_DIR``; broker and topic prefix from the
    ``SWITCHYARD_*`` environment (outputs go to the prefixed catalog topics)."""
    domain, raw_topic, group, state_dir = argv
    settings = Settings()
    catalog = catalog_of(settings)
    rules = load_domain(catalog, domain).rules
    exactly_once = bool(catalog.domains[domain].exactly_once)
    app = application(settings, group, state_dir, exactly_once)
    build(app, settings, catalog, rules, raw_topic)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
