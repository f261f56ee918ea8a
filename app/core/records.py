"""The record types every domain speaks, and the pure decode -> validate -> enrich contract.

A domain plugs in as a package named in the catalog's ``domains:`` section (``app/domains/<name>/`` for the five
upstream systems; the tests add their own elsewhere) whose ``DOMAIN`` (:mod:`app.core.domain`) carries a
:class:`DomainRules`. Its
``process`` is a pure function of (record bytes + headers, clock): it returns a :class:`Processed` or raises a
:class:`~app.core.errors.RecordError`. The stage engine (:mod:`app.core.engine`, under both drivers),
``switchyard check``, the benchmark's "plain" loop and the unit tests all call that same function, so what is
tested offline is what runs in the worker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

Headers = tuple[tuple[str, bytes], ...]

EVENT_TYPE_HEADER = "switchyard.event-type"


#: Kafka's framing of one record at its largest (record batch format v2): the header of a batch it may travel in
#: alone, then the varints of its length, attributes, timestamp and offset deltas, key and value lengths and header
#: count. Each header adds the two varints of its key's and value's lengths.
RECORD_FRAMING = 61 + 5 + 1 + 10 + 5 + 5 + 5 + 5
HEADER_FRAMING = 10


def record_size(key: str | bytes | None, value: bytes | None, headers: Headers = ()) -> int:
    """An upper bound of what one record costs against a producer's ``max_request_size``."""
    raw_key = key.encode() if isinstance(key, str) else key
    size = RECORD_FRAMING + len(raw_key or b"") + len(value or b"")
    for name, header in headers:
        size += HEADER_FRAMING + len(name.encode()) + len(header)
    return size


def normalize_headers(headers: Any) -> Headers:
    """Kafka headers as a client hands them over (a list of pairs, a dict, ``None``) -> :data:`Headers`."""
    if not headers:
        return ()
    items = headers.items() if isinstance(headers, dict) else headers
    return tuple((str(k), bytes(v) if v is not None else b"") for k, v in items)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record as it sits on a raw topic: bytes untouched, plus where it came from."""

    value: bytes | None
    key: bytes | None = None
    headers: Headers = ()
    topic: str = ""
    partition: int = -1
    offset: int = -1
    timestamp_ms: int | None = None

    def header(self, name: str) -> str | None:
        """Last value of header ``name`` decoded as UTF-8 (undecodable bytes are replaced, never raised)."""
        found: str | None = None
        for k, v in self.headers:
            if k == name:
                found = v.decode("utf-8", "replace") if v is not None else ""
        return found

    @property
    def event_type_header(self) -> str | None:
        return self.header(EVENT_TYPE_HEADER)


@dataclass(frozen=True, slots=True)
class Processed:
    """What a domain's pure ``process`` returns for an accepted record.

    ``enriched`` is JSON-ready (str/int/float/bool/None/list/dict): it is what ``switchyard check`` prints and
    what the enriched topic carries. ``payload`` is the validated model, for the agent's table logic.
    """

    event_id: str
    event_type: str
    payload: Any
    enriched: dict[str, Any]
    event_time: datetime | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Sample:
    """A seed-derived example record, published by the demo and used by contract tests."""

    name: str
    value: bytes
    event_type: str | None = None
    key: bytes | None = None

    @property
    def headers(self) -> Headers:
        return ((EVENT_TYPE_HEADER, self.event_type.encode()),) if self.event_type else ()


@dataclass(frozen=True, slots=True)
class Emit:
    """A record to produce. ``topic`` is a catalog name; ``value`` is JSON-ready (encoded with orjson), raw
    ``bytes`` (sent as is, e.g. Avro), or ``None`` for a tombstone on a compacted topic. ``key`` may be raw
    ``bytes`` where an output keeps the raw record's key untouched (an ``unhandled`` topic)."""

    topic: str
    key: str | bytes | None
    value: Any
    headers: Headers = ()


@dataclass(frozen=True, slots=True)
class Folded:
    """Result of a table fold: the key's new state (``None`` deletes the key) and what to emit because of it.

    ``outcome`` names, for ``switchyard_table_updates_total``, what the fold did when "applied" / "unchanged"
    (read from ``changed``) is not precise enough: a stale update changes the bookkeeping without being applied.
    """

    state: Any
    emits: Sequence[Emit] = ()
    changed: bool = True
    outcome: str | None = None


@dataclass(frozen=True)
class TableRule:
    """A changelog-backed table and the pure fold that maintains it.

    Faust tables are partitioned like the stream that writes them, so every table is fed by a topic keyed by the
    table's own key (``source_topic``; a repartition topic where no natural one exists, Kafka Streams style).
    ``fold(state, value, now)`` must be idempotent for a redelivered value: stage one is at-least-once, so the
    same update can arrive twice after a crash. ``value`` is the decoded JSON of the source record, or ``None``
    for a tombstone (erasure).
    """

    name: str
    source_topic: str
    fold: Callable[[Any, Any, datetime], Folded]


@dataclass(frozen=True)
class DomainRules:
    """The pure side of a domain: everything that runs without a broker.

    Stage one, per raw record: ``process(raw, now)`` decodes, validates and enriches (or raises a
    :class:`~app.core.errors.RecordError`); after dedupe on ``Processed.event_id``, ``route(processed, now)`` says
    what to produce (enriched topics, repartition topics feeding tables, CRM commands). Stage two: each
    :class:`TableRule` folds its source topic into a table and emits snapshots.

    ``event_types`` lists what ``check --type`` accepts (empty when the body names its type). ``samples`` returns
    the seed examples the demo publishes. ``key_of`` derives the Kafka key of a raw body for ``produce``.
    """

    name: str
    process: Callable[[RawRecord, datetime], Processed]
    route: Callable[[Processed, datetime], Sequence[Emit]] = lambda processed, now: ()
    tables: Sequence[TableRule] = ()
    event_types: Sequence[str] = ()
    samples: Callable[[], Sequence[Sample]] = lambda: ()
    key_of: Callable[[bytes, str | None], bytes | None] = lambda body, event_type: None


def canonical_json(body: Any) -> bytes:
    """Sorted keys, no whitespace: the form event ids are hashed from."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def content_event_id(event_type: str, body: Any) -> str:
    """The event id of an event that carries none: sha256 of its type and canonical body (DOMAINS.md)."""
    h = hashlib.sha256()
    h.update(event_type.encode())
    h.update(b"\x00")
    h.update(canonical_json(body))
    return h.hexdigest()


def load_samples(domain: str) -> list[Sample]:
    """The seed samples of ``domain`` from ``samples/<domain>/``.

    File names are ``<event-type>--<label>.json`` for domains whose event type travels in a header, or
    ``<label>.json`` where the body names its own type. Sorted, so the demo publishes them in a stable order.
    """
    from app.paths import SAMPLES_DIR

    out: list[Sample] = []
    for path in sorted((SAMPLES_DIR / domain).glob("*.json")):
        stem = path.stem
        event_type = stem.split("--", 1)[0] if "--" in stem else None
        out.append(Sample(name=stem, value=path.read_bytes(), event_type=event_type))
    return out
