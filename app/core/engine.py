"""The one stage engine: a pure batch step that every driver runs, and the one way its results are counted.

A *step* takes a batch of records and returns what to do about them, doing none of it::

    records ──► stage_one(rules, records, seen, now)  ──► Step: emits (outputs + dead letters), marks, counts
    records ──► fold(rule, records, state_of, now)     ──► Step: emits (snapshots + dead letters), writes, counts

A step sends a compacted topic (a snapshot topic: ``cleanup: compact`` in the catalog) only the last value of each
key it emitted, in that value's place (:func:`latest_per_key`). Such a topic promises its consumers each key's
latest value and nothing in between, so a batch that updates one talent's progress ten times sends one snapshot
instead of ten; Kafka Streams' record cache forwards a table's updates the same way. Every other emit, dead
letters and CRM commands among them, goes out one for one.

The drivers are thin I/O shells around the same step, so they cannot disagree on what a record becomes, on which
stage an unexpected error is booked to, or on what the metrics say:

- at-least-once (:mod:`app.core.runtime`, on Faust agents): send the emits, wait for their acknowledgements, then
  store the marks and table writes (a crash in between re-emits; it never loses);
- exactly-once (:mod:`app.core.runtime.eos`, on Kafka transactions): emits, marks and input offsets in one transaction.

:class:`Accounting` is the one metrics path of a step, whichever driver ran it. Nothing here imports Faust.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from app.core.codecs import encode_json
from app.core.deadletter import deadletter_headers, fitted
from app.core.errors import EnrichError, OutputTooLarge, RecordError, detached
from app.core.metrics import Metrics
from app.core.records import (
    DomainRules,
    Emit,
    Folded,
    Headers,
    Processed,
    RawRecord,
    TableRule,
    record_size,
)

log = logging.getLogger("switchyard.engine")

#: An emit whose value is already bytes (or a tombstone) and whose key is bytes: what a producer sends.
Encode = Callable[[Emit], Emit]
#: Has this event id of this record's partition been seen (and not expired)?
SeenCheck = Callable[[RawRecord, str], bool]
#: The decoded state of ``key`` in ``partition`` before this batch (``None``: no state).
StateOf = Callable[[int, bytes], Any]


def encode_value(value: Any) -> bytes | None:
    """Emit values: bytes as they are, ``None`` as a tombstone, anything else as JSON."""
    if value is None or isinstance(value, bytes):
        return value
    return encode_json(value)


def encoded(emit: Emit) -> Emit:
    """``emit`` ready for the wire: value encoded, key as bytes. Done inside the step's error handling, so a value
    no encoder writes dead-letters its record instead of stopping the driver (or aborting a transaction forever)."""
    key = emit.key.encode() if isinstance(emit.key, str) else emit.key
    return Emit(emit.topic, key, encode_value(emit.value), emit.headers)


def latest_per_key(emits: list[Emit], compacted: Container[str]) -> list[Emit]:
    """``emits`` without those to a ``compacted`` topic that a later emit of the same topic and key supersedes."""
    last: dict[tuple[str, bytes | str | None], int] = {}
    kept = 0
    for i, e in enumerate(emits):
        if e.topic in compacted:
            last[(e.topic, e.key)] = i
            kept += 1
    if len(last) == kept:
        return emits
    return [e for i, e in enumerate(emits) if last.get((e.topic, e.key), i) == i]


def carried(emits: list[Emit], trace: Headers) -> list[Emit]:
    """``emits`` with a record's trace headers appended: its outputs continue its trace on the next hop."""
    return [Emit(e.topic, e.key, e.value, e.headers + trace) for e in emits]


def internal_error(exc: BaseException, stage: str) -> RecordError:
    """An unexpected exception, as a dead-letter error. Only the type is kept: its text may quote the record."""
    err = EnrichError(f"unexpected {type(exc).__name__} in {stage}", code="INTERNAL-ERROR")
    err.stage = stage
    return err


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that goes to its domain's dead-letter topic, and why."""

    raw: RawRecord
    error: RecordError


@dataclass(frozen=True, slots=True)
class Write:
    """A table write of one key: the new state encoded (``None`` deletes), and the last record that made it."""

    partition: int
    value: bytes | None
    offset: int


@dataclass(slots=True)
class Step:
    """What a batch becomes. ``emits`` are encoded and in order (dead letters among them, where they fell), a
    compacted topic's only each key's last."""

    n: int = 0
    emits: list[Emit] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    #: stage one: (record, event id) to mark seen once the emits are acknowledged
    marks: list[tuple[RawRecord, str]] = field(default_factory=list)
    #: stage one: accepted records, for the acceptance counts and the end-to-end lag
    accepted: list[tuple[RawRecord, Processed]] = field(default_factory=list)
    dedupe_hits: int = 0
    #: folds: table key -> its last write in this batch
    writes: dict[bytes, Write] = field(default_factory=dict)
    #: folds: outcome -> count, for ``switchyard_table_updates_total``
    outcomes: dict[str, int] = field(default_factory=dict)


class Engine:
    """The pure steps of one worker. ``deadletter_topic(domain)`` names the catalog topic of a domain's dead letters;
    ``encode`` turns an emit into wire form (:func:`encoded`, plus schema-registry framing where configured);
    ``compacted`` names the topics that promise only each key's latest value (:meth:`Catalog.compacted_topics`;
    none, unless given)."""

    def __init__(
        self,
        deadletter_topic: Callable[[str], str],
        encode: Encode = encoded,
        compacted: Container[str] = frozenset(),
        max_record_bytes: int | None = None,
    ) -> None:
        self._deadletter_topic = deadletter_topic
        self._encode = encode
        self._compacted = compacted
        self._max_record_bytes = max_record_bytes

    def _fits(self, emits: list[Emit], key: bytes | None = None, state: bytes | None = None) -> None:
        """Raise :class:`OutputTooLarge` if an encoded emit, or the changelog record of ``key``'s new ``state``,
        is over ``max_record_bytes`` (no limit when it is ``None``). The producer would refuse it, and with it the
        batch it came in; found here, it costs its record alone."""
        limit = self._max_record_bytes
        if limit is None:
            return
        for e in emits:
            size = record_size(e.key, e.value, e.headers)
            if size > limit:
                raise OutputTooLarge(
                    f"an output to {e.topic} would be {size} bytes, over the {limit}-byte record limit "
                    "(SWITCHYARD_MAX_RECORD_BYTES)"
                )
        if state is not None and (size := record_size(key, state)) > limit:
            raise OutputTooLarge(
                f"the key's table state would be {size} bytes, over the {limit}-byte record limit "
                "(SWITCHYARD_MAX_RECORD_BYTES)"
            )

    def reject(
        self, step: Step, domain: str, raw: RawRecord, err: RecordError, now: datetime, trace: Headers = ()
    ) -> None:
        """Book ``raw`` as a dead letter of ``domain``: the record untouched plus the error headers (and, traced,
        the trace headers of the span that rejected it); within the record limit (:func:`fitted`)."""
        step.rejected.append(Rejected(raw, detached(err)))
        headers = deadletter_headers(raw, err, now, trace)
        key, value, headers = fitted(raw, headers, self._max_record_bytes)
        step.emits.append(Emit(self._deadletter_topic(domain), key, value, headers))

    def stage_one(
        self,
        rules: DomainRules,
        records: Sequence[RawRecord],
        seen: SeenCheck,
        now: datetime,
        trace: Sequence[Headers] | None = None,
    ) -> Step:
        """Decode, validate, enrich (``rules.process``), drop what was seen (before or earlier in the batch), route.

        An unexpected exception is a bug in a rule: it dead-letters its record as ``INTERNAL-ERROR`` (stage
        ``validate`` from ``process``, ``enrich`` from ``route``) and the batch goes on.

        ``trace[i]``, when the driver traces, are the headers ``records[i]``'s emits and dead letter carry on
        (:mod:`app.core.tracing`): data in, data out; the step itself knows nothing of spans.
        """
        step = Step(n=len(records))
        in_batch: set[str] = set()
        domain = rules.name
        for i, raw in enumerate(records):
            carry = trace[i] if trace is not None else ()
            try:
                processed = rules.process(raw, now)
            except RecordError as err:
                self.reject(step, domain, raw, err, now, carry)
                continue
            except Exception as exc:  # a bug must not stop the stream: dead-letter and carry on
                log.exception(
                    "unexpected error in %s.process at %s[%s]@%s",
                    domain,
                    raw.topic,
                    raw.partition,
                    raw.offset,
                )
                self.reject(step, domain, raw, internal_error(exc, "validate"), now, carry)
                continue
            event_id = processed.event_id
            if event_id in in_batch or seen(raw, event_id):
                step.dedupe_hits += 1
                continue
            try:
                emits = [self._encode(e) for e in rules.route(processed, now)]
                if carry:
                    emits = carried(emits, carry)
                self._fits(emits)
            except RecordError as err:
                self.reject(step, domain, raw, err, now, carry)
                continue
            except Exception as exc:
                log.exception(
                    "unexpected error in %s.route at %s[%s]@%s", domain, raw.topic, raw.partition, raw.offset
                )
                self.reject(step, domain, raw, internal_error(exc, "enrich"), now, carry)
                continue
            in_batch.add(event_id)
            step.emits.extend(emits)
            step.marks.append((raw, event_id))
            step.accepted.append((raw, processed))
        step.emits = latest_per_key(step.emits, self._compacted)
        return step

    def fold(
        self,
        domain: str,
        rule: TableRule,
        records: Sequence[RawRecord],
        state_of: StateOf,
        now: datetime,
        trace: Sequence[Headers] | None = None,
    ) -> Step:
        """Fold a batch of feed records into their keys' states. A key's state is decoded once per batch and its
        values fold in order on that copy; only the key's last state is written. ``trace`` as in
        :meth:`stage_one`."""
        step = Step(n=len(records))
        states: dict[bytes, Any] = {}
        for i, raw in enumerate(records):
            carry = trace[i] if trace is not None else ()
            key = raw.key
            if key is None:
                no_key = EnrichError("table feed record has no key", code="FEED-NO-KEY")
                self.reject(step, domain, raw, no_key, now, carry)
                continue
            try:
                value = orjson.loads(raw.value) if raw.value else None
                current = states[key] if key in states else state_of(raw.partition, key)
                folded: Folded = rule.fold(current, value, now)
                emits = [self._encode(e) for e in folded.emits]
                if carry:
                    emits = carried(emits, carry)
                stored = None if folded.state is None else encode_json(folded.state)
                self._fits(emits, key, stored if folded.changed else None)
            except RecordError as err:
                self.reject(step, domain, raw, err, now, carry)
                continue
            except Exception as exc:
                log.exception(
                    "unexpected error folding %s.%s at %s[%s]@%s",
                    domain,
                    rule.name,
                    raw.topic,
                    raw.partition,
                    raw.offset,
                )
                self.reject(step, domain, raw, internal_error(exc, "enrich"), now, carry)
                continue
            step.emits.extend(emits)
            if folded.changed:
                states[key] = folded.state
                step.writes[key] = Write(raw.partition, stored, raw.offset)
            outcome = folded.outcome or ("applied" if folded.changed else "unchanged")
            step.outcomes[outcome] = step.outcomes.get(outcome, 0) + 1
        step.emits = latest_per_key(step.emits, self._compacted)
        return step


class Accounting:
    """The one metrics path of every driver: a step is counted once, when its driver has made it durable (an
    aborted transaction is processed again and counted then). ``processing_seconds`` is observed once per record
    with its batch's time, consume to acknowledged: every record of a batch waits for the whole batch."""

    def __init__(self, metrics: Metrics, deadletter_topic: Callable[[str], str]) -> None:
        self.metrics = metrics
        self._deadletter_topic = deadletter_topic

    def stage_one(self, domain: str, step: Step, seconds: float, now: datetime) -> None:
        m = self.metrics
        m.events_in.labels(domain).inc(step.n)
        m.last_event_time.labels(domain).set(now.timestamp())
        if step.dedupe_hits:
            m.dedupe_hits.labels(domain).inc(step.dedupe_hits)
        accepted: dict[str, int] = {}
        for raw, processed in step.accepted:
            accepted[processed.event_type] = accepted.get(processed.event_type, 0) + 1
            self._lag(domain, processed.event_time, raw, now)
        for event_type, count in accepted.items():
            m.events_accepted.labels(domain, event_type).inc(count)
        self.rejected(domain, step)
        self._outputs(domain, step)
        histogram = m.processing_seconds.labels(domain)
        for _ in range(step.n):
            histogram.observe(seconds)

    def fold(self, domain: str, table: str, step: Step) -> None:
        for outcome, count in step.outcomes.items():
            self.metrics.table_updates.labels(f"{domain}.{table}", outcome).inc(count)
        self.rejected(domain, step)
        self._outputs(domain, step)

    def rejected(self, domain: str, step: Step) -> None:
        m = self.metrics
        for r in step.rejected:
            err = r.error
            m.events_rejected.labels(domain, err.stage, err.code).inc()
            m.dlq_writes.labels(self._deadletter_topic(domain)).inc()
            log.warning(
                "dead-lettered domain=%s code=%s stage=%s path=%s source=%s[%s]@%s",
                domain,
                err.code,
                err.stage,
                err.path or "-",
                r.raw.topic,
                r.raw.partition,
                r.raw.offset,
            )

    def _outputs(self, domain: str, step: Step) -> None:
        """``switchyard_outputs_total`` counts what a step produced besides its dead letters (counted above)."""
        counts: dict[str, int] = {}
        for e in step.emits:
            counts[e.topic] = counts.get(e.topic, 0) + 1
        if step.rejected:
            counts[self._deadletter_topic(domain)] -= len(step.rejected)
        for topic, count in counts.items():
            if count:
                self.metrics.outputs.labels(topic).inc(count)

    def _lag(self, domain: str, event_time: datetime | None, raw: RawRecord, now: datetime) -> None:
        if event_time is not None:
            lag = (now - event_time).total_seconds()
        elif raw.timestamp_ms:
            lag = now.timestamp() - raw.timestamp_ms / 1000
        else:
            return
        self.metrics.e2e_lag_seconds.labels(domain).observe(max(lag, 0.0))
