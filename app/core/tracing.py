"""OpenTelemetry tracing: one trace per record, carried across every Kafka hop in W3C ``traceparent`` headers.

Why a module of our own around the SDK: the drivers (webhook ingress, stage one, the folds, the CRM sink) must not
each learn the SDK, its semantic conventions, the header format or what is safe to put on a span; and the hot path
must cost nothing when tracing is off. So every driver holds one :class:`Tracing` (``Runtime.tracing``), asks
``tracing.enabled`` once per batch, and otherwise uses three calls:

- :meth:`Tracing.consume` opens one span per record of a batch, each the child of the context its record carries
  (or the root of a new trace), plus one batch span *linking* them: a record keeps its own trace whichever batch it
  rode in. It returns the headers each record's outputs carry on (``RecordSpans.carry``, aligned with the
  records), which the pure engine appends to the record's emits and dead letters as plain data;
- :meth:`Tracing.webhook` continues an HTTP request's ``traceparent`` (or starts a trace) and hands the Kafka
  headers of the raw record it writes;
- :meth:`Tracing.http_call` is the CRM's HTTP client span, child of the first command it carries, linked to the
  others (a batched call serves several traces).

Configuration is the SDK's own: tracing is on when an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER`` (``otlp``/``console``) is set and
``OTEL_SDK_DISABLED`` is not true; sampling (``OTEL_TRACES_SAMPLER``/``_ARG``, parent-based by default), the
service name (``OTEL_SERVICE_NAME``, default ``switchyard``), resource attributes and batch-export knobs
(``OTEL_BSP_*``) are read by the SDK. The provider is this object's, never the process-global one, so a test can
inject one with an in-memory exporter.

Privacy: spans carry ids, codes, topics, partitions, offsets, HTTP methods, routes and statuses, never a payload
field. A Kafka key is an entity id everywhere but on ``crm.commands``, where a contact may be named by its e-mail
(design note 10): a key that looks like an e-mail address is replaced by a hash of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app import __version__
from app.core.errors import RecordError
from app.core.records import Headers, RawRecord

log = logging.getLogger("switchyard.tracing")

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

#: The W3C trace context propagator: the only format on Kafka headers and inbound HTTP.
_W3C = TraceContextTextMapPropagator()
_EMPTY = Context()


class _HeaderGetter(Getter[Headers]):
    """Reads W3C fields from Kafka headers. The *last* value wins: a replayed dead letter or an ``unhandled``
    record keeps its original headers, and the hop that handled it last appended its own context after them."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        found: bytes | None = None
        for k, v in carrier:
            if k == key:
                found = v
        return None if found is None else [found.decode("ascii", "replace")]

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


_GETTER = _HeaderGetter()


def context_of(headers: Headers) -> Context:
    """The trace context a record carries (an empty context, i.e. a new trace, when it carries none)."""
    return _W3C.extract(headers, _EMPTY, _GETTER)


def carry_headers(span: Span) -> Headers:
    """The Kafka headers that make ``span`` the parent of whatever the next hop does with a record: W3C
    ``traceparent`` version 00 (and ``tracestate`` when there is one), written directly rather than through the
    propagator's context objects, since it runs once per record per hop (``tests/unit/test_tracing.py`` holds it
    to the propagator's output)."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return ()
    parent = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}".encode()
    if ctx.trace_state:
        return ((TRACEPARENT, parent), (TRACESTATE, ctx.trace_state.to_header().encode()))
    return ((TRACEPARENT, parent),)


def trace_set(span: Span) -> Context:
    """A context holding ``span`` only (never the ambient one: nothing here attaches contexts)."""
    return set_span_in_context(span, _EMPTY)


def key_attribute(key: bytes | None) -> str | None:
    """A Kafka key as a span attribute: the id it is, or a hash where it may be an e-mail address."""
    if key is None:
        return None
    text = key.decode("utf-8", "replace")
    if "@" in text:
        return "sha256:" + hashlib.sha256(key).hexdigest()[:16]
    return text


def record_attributes(raw: RawRecord, stage: str, domain: str) -> dict[str, Any]:
    """Messaging semantic conventions of one consumed record, plus where in Switchyard it was handled."""
    attrs: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": raw.topic,
        "messaging.destination.partition.id": str(raw.partition),
        "messaging.kafka.offset": raw.offset,
        "switchyard.stage": stage,
        "switchyard.domain": domain,
    }
    key = key_attribute(raw.key)
    if key is not None:
        attrs["messaging.kafka.message.key"] = key
    return attrs


def mark_error(span: Span, err: RecordError) -> None:
    """A dead-lettered record's span: status ERROR with the error's code, stage and JSON path (never its message,
    which may quote the record)."""
    span.set_attribute("switchyard.error.code", err.code)
    span.set_attribute("switchyard.error.stage", err.stage)
    span.set_attribute("switchyard.error.path", err.path or "")
    span.set_attribute("error.type", err.code)
    span.set_status(Status(StatusCode.ERROR, err.code))


class RecordSpans:
    """The spans of one consumed batch: one per record (``spans[i]`` for ``records[i]``) and the batch span.

    ``carry[i]`` are the headers ``records[i]``'s outputs carry on. End them with :meth:`end` once the batch's
    outputs are acknowledged, naming the dead-lettered records so their spans end in ERROR."""

    __slots__ = ("_index", "batch", "carry", "records", "spans")

    def __init__(self, records: Sequence[RawRecord], spans: list[Span], batch: Span) -> None:
        self.records = records
        self.spans = spans
        self.batch = batch
        self.carry: list[Headers] = [carry_headers(s) for s in spans]
        self._index: dict[int, int] | None = None

    def _at(self, raw: RawRecord) -> int:
        if self._index is None:
            self._index = {id(r): i for i, r in enumerate(self.records)}
        return self._index[id(raw)]

    def span_of(self, raw: RawRecord) -> Span:
        """The span of ``raw`` (the very object handed to :meth:`Tracing.consume`)."""
        return self.spans[self._at(raw)]

    def carry_of(self, raw: RawRecord) -> Headers:
        return self.carry[self._at(raw)]

    def fail(self, raw: RawRecord, err: RecordError) -> None:
        mark_error(self.span_of(raw), err)

    def abort(self, reason: str) -> None:
        """The batch's outputs were not committed (an aborted or fenced transaction): its spans end in ERROR; the
        records come again and get new spans under the same parents."""
        for span in (*self.spans, self.batch):
            span.set_attribute("switchyard.transaction", reason)
            span.set_status(Status(StatusCode.ERROR, f"transaction {reason}"))
        self.end()

    def end(self, rejected: Sequence[tuple[RawRecord, RecordError]] = ()) -> None:
        for raw, err in rejected:
            self.fail(raw, err)
        for span in self.spans:
            span.end()
        if rejected:
            self.batch.set_attribute("switchyard.batch.rejected", len(rejected))
        self.batch.end()


class Hop:
    """One webhook delivery: the server span of the request and the producer span of its raw record."""

    __slots__ = ("producer", "server")

    def __init__(self, server: Span | None, producer: Span | None) -> None:
        self.server = server
        self.producer = producer

    @property
    def carry(self) -> Headers:
        """Headers of the raw record: the producer span is the parent of stage one."""
        return carry_headers(self.producer) if self.producer is not None else ()

    def stored(self, partition: int, offset: int, key: bytes | None) -> None:
        """The broker acknowledged the raw record: where it is."""
        if self.producer is not None:
            attribute = key_attribute(key)
            if attribute is not None:
                self.producer.set_attribute("messaging.kafka.message.key", attribute)
            self.producer.set_attribute("messaging.destination.partition.id", str(partition))
            self.producer.set_attribute("messaging.kafka.offset", offset)

    def end(self, status: int, error: str = "") -> None:
        if self.producer is not None:
            if status >= 500:
                self.producer.set_status(Status(StatusCode.ERROR, error or str(status)))
            self.producer.end()
        if self.server is not None:
            self.server.set_attribute("http.response.status_code", status)
            if status >= 500:
                self.server.set_status(Status(StatusCode.ERROR))
            self.server.end()


NO_HOP = Hop(None, None)


class Tracing:
    """The worker's tracer, or none (:data:`NO_TRACING`): every driver checks :attr:`enabled` once per batch."""

    def __init__(self, tracer: Tracer | None, shutdown: Callable[[], None] = lambda: None) -> None:
        self.enabled = tracer is not None
        self._tracer = tracer
        self._shutdown = shutdown

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Tracing:
        """On when ``environ`` names an exporter (see the module doc), else :data:`NO_TRACING`. ``environ`` decides
        whether and where to export; the SDK reads the rest (sampler, headers, batch knobs) from the process's."""
        if not wants_tracing(environ):
            return NO_TRACING
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporter_name = (environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",")[0].strip().lower()
        exporter: SpanExporter
        if exporter_name == "console":
            exporter = ConsoleSpanExporter()
        else:
            protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            if protocol != "http/protobuf":
                log.warning(
                    "OTEL_EXPORTER_OTLP_PROTOCOL=%s is not supported; exporting http/protobuf", protocol
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            base = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").rstrip("/")
            endpoint = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
                f"{base}/v1/traces" if base else None
            )
            exporter = OTLPSpanExporter(endpoint=endpoint)
        resource = Resource.create(
            {"service.name": environ.get("OTEL_SERVICE_NAME") or "switchyard", "service.version": __version__}
        )
        provider = TracerProvider(resource=resource)  # sampler: OTEL_TRACES_SAMPLER, read by the SDK
        provider.add_span_processor(BatchSpanProcessor(exporter))
        log.info("tracing on: exporter=%s sampler=%s", exporter_name, provider.sampler.get_description())
        return cls.with_provider(provider)

    @classmethod
    def with_provider(cls, provider: Any) -> Tracing:
        """Tracing through an SDK ``TracerProvider`` (tests pass one with an in-memory exporter)."""
        return cls(provider.get_tracer("switchyard", __version__), provider.shutdown)

    @property
    def tracer(self) -> Tracer:
        assert self._tracer is not None, "tracing is off"
        return self._tracer

    def shutdown(self) -> None:
        """Export what is buffered (a stopping worker's last spans) and stop the exporter."""
        self._shutdown()

    # ---- Kafka hops ----------------------------------------------------------------------------------------
    def consume(self, stage: str, domain: str, records: Sequence[RawRecord]) -> RecordSpans:
        """Open a span per record (child of the context it carries) and a batch span linking them. Attributes are
        set only on spans the sampler kept: at 1 % the other 99 cost a sampling decision and their headers."""
        tracer = self.tracer
        spans: list[Span] = []
        for raw in records:
            span = tracer.start_span(
                f"process {raw.topic}", context_of(raw.headers) if raw.headers else _EMPTY, SpanKind.CONSUMER
            )
            if span.is_recording():
                span.set_attributes(record_attributes(raw, stage, domain))
            spans.append(span)
        batch = tracer.start_span(
            f"{stage} batch",
            _EMPTY,
            SpanKind.CONSUMER,
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.batch.message_count": len(records),
                "switchyard.stage": stage,
                "switchyard.domain": domain,
            },
            # the sampled records only: a link to a span no backend holds leads nowhere
            links=[Link(s.get_span_context()) for s in spans if s.is_recording()],
        )
        return RecordSpans(records, spans, batch)

    # ---- webhook ingress -----------------------------------------------------------------------------------
    def webhook(
        self, domain: str, method: str, route: str, path: str, headers: Mapping[str, str], topic: str
    ) -> Hop:
        """The server span of one webhook request (continuing its ``traceparent``, or a new trace) and the
        producer span of the raw record it writes to ``topic``."""
        if not self.enabled:
            return NO_HOP
        tracer = self.tracer
        incoming = {k: headers[k] for k in (TRACEPARENT, TRACESTATE) if k in headers}
        parent = _W3C.extract(incoming, _EMPTY) if incoming else _EMPTY
        server = tracer.start_span(
            f"{method} {route}",
            parent,
            SpanKind.SERVER,
            {
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "switchyard.stage": "ingress",
                "switchyard.domain": domain,
            },
        )
        producer = tracer.start_span(
            f"publish {topic}",
            trace_set(server),
            SpanKind.PRODUCER,
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.operation.name": "publish",
                "messaging.destination.name": topic,
                "switchyard.stage": "ingress",
                "switchyard.domain": domain,
            },
        )
        return Hop(server, producer)

    # ---- CRM calls -----------------------------------------------------------------------------------------
    @contextmanager
    def http_call(
        self,
        method: str,
        url: str,
        route: str,
        parents: Sequence[Span],
        status: Callable[[], int | None],
        attributes: Mapping[str, Any] | None = None,
    ) -> Iterator[Span]:
        """A client span around one HTTP request: the child of ``parents[0]``, linked to the other parents (and
        each of them linked back to it). ``status()`` is read when the request is over."""
        tracer = self.tracer
        first = parents[0] if parents else None
        parent = trace_set(first) if first is not None else _EMPTY
        links = [Link(p.get_span_context()) for p in parents[1:] if p.get_span_context().is_valid]
        attrs: dict[str, Any] = {"http.request.method": method, "url.full": url, **(attributes or {})}
        span = tracer.start_span(f"{method} {route}", parent, SpanKind.CLIENT, attrs, links=links)
        for p in parents[1:]:
            if p.is_recording():
                p.add_link(span.get_span_context(), {"switchyard.link": "crm-call"})
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            code = status()
            if code is not None:
                span.set_attribute("http.response.status_code", code)
                if code >= 400:
                    span.set_attribute("error.type", str(code))
                    span.set_status(Status(StatusCode.ERROR))
            span.end()


def wants_tracing(environ: Mapping[str, str]) -> bool:
    """Is an exporter configured (and the SDK not disabled)?"""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


#: Tracing off: ``enabled`` is False and no SDK object exists.
NO_TRACING = Tracing(None)
