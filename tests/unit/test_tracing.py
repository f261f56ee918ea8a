"""Tracing without a broker: the SDK's in-memory exporter records what each hop's spans say and carry.

What is held here: a record's span continues the context its headers carry (or starts a trace); the engine hands
that span's context to every output and dead letter as plain headers; a batch span links its records; a dead
letter ends its span in ERROR with code, stage and path, and carries the trace id; a CRM call is a client span in
its first command's trace, linked to the others'; nothing is configured, nothing is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import orjson
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from app.core import deadletter as dl
from app.core.engine import Engine
from app.core.records import Emit, Folded, RawRecord, TableRule
from app.core.tracing import NO_TRACING, TRACEPARENT, Tracing, key_attribute, wants_tracing
from app.sinks.crm.limiter import RateLimiter
from app.sinks.crm.sink import CrmSink
from tests.unit.test_crm_batching import cmd
from tests.unit.test_crm_sink import ModelAdapter
from tests.unit.test_engine import NOW, RULES, dl_topic, rec

UPSTREAM_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
UPSTREAM_SPAN = "00f067aa0ba902b7"
UPSTREAM = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01"


@pytest.fixture
def exported() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield Tracing.with_provider(provider), exporter
    provider.shutdown()


def traced(offset: int, body: dict[str, object], traceparent: str | None = UPSTREAM) -> RawRecord:
    raw = rec(offset, body)
    headers = ((TRACEPARENT, traceparent.encode()),) if traceparent else ()
    return RawRecord(raw.value, raw.key, headers, raw.topic, raw.partition, raw.offset)


def header(headers: Sequence[tuple[str, bytes]], name: str) -> str:
    return next(v.decode() for k, v in reversed(headers) if k == name)


def by_name(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_nothing_configured_is_off() -> None:
    assert not wants_tracing({})
    assert not wants_tracing({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"})
    assert wants_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert wants_tracing({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert not wants_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_SDK_DISABLED": "true"})
    assert not wants_tracing({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x", "OTEL_TRACES_EXPORTER": "none"})
    assert Tracing.from_env({}) is NO_TRACING and not NO_TRACING.enabled
    on = Tracing.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert on.enabled
    on.shutdown()


def test_stage_one_continues_each_record_and_carries_its_context_to_outputs_and_dead_letters(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    records = [traced(0, {"id": "a"}), traced(1, {"id": "b", "bad": True}), traced(2, {"id": "c"}, None)]
    spans = tracing.consume("stage-one", "d", records)
    step = Engine(dl_topic).stage_one(RULES, records, lambda raw, event_id: False, NOW, spans.carry)
    spans.end([(r.raw, r.error) for r in step.rejected])

    finished = exporter.get_finished_spans()
    a, b, c = by_name(finished, "process d.raw")
    # a and b continue the upstream trace, each its own child of the upstream span; c starts a trace
    for span in (a, b):
        assert span.context is not None and span.parent is not None
        assert format(span.context.trace_id, "032x") == UPSTREAM_TRACE
        assert format(span.parent.span_id, "016x") == UPSTREAM_SPAN
        assert span.kind is SpanKind.CONSUMER
    assert c.parent is None and c.context is not None
    assert format(c.context.trace_id, "032x") != UPSTREAM_TRACE
    assert a.attributes is not None
    assert a.attributes["messaging.system"] == "kafka"
    assert a.attributes["messaging.destination.name"] == "d.raw"
    assert a.attributes["messaging.kafka.offset"] == 0
    assert a.attributes["messaging.kafka.message.key"] == "k"

    # outputs carry their record's span as parent (the last traceparent wins over the upstream one)
    out_a, dead_b, out_c = step.emits
    assert out_a.topic == "d.out" and dead_b.topic == "d.deadletter"
    assert a.context is not None and c.context is not None
    assert header(out_a.headers, TRACEPARENT).split("-")[2] == format(a.context.span_id, "016x")
    assert header(out_c.headers, TRACEPARENT).split("-")[1] == format(c.context.trace_id, "032x")

    # the dead letter: ERROR span with code, stage, path; the trace id in a header, also in `dlq list`
    assert b.status.status_code is StatusCode.ERROR
    assert b.attributes is not None
    assert b.attributes["switchyard.error.code"] == "SCHEMA-TYPE"
    assert b.attributes["switchyard.error.stage"] == "validate"
    assert b.attributes["switchyard.error.path"] == "/n"
    assert header(dead_b.headers, dl.TRACE_ID) == UPSTREAM_TRACE
    letter = dl.DeadLetter("d.deadletter", 0, 0, None, dead_b.value, dead_b.headers)
    assert letter.summary()["trace_id"] == UPSTREAM_TRACE
    # replay drops the error headers, the trace id among them, and keeps the traceparent of the failed hop
    assert dl.TRACE_ID not in dict(letter.replay_headers())
    assert b.context is not None
    assert header(letter.replay_headers(), TRACEPARENT).split("-")[2] == format(b.context.span_id, "016x")

    # one batch span, linking each record's span, in a trace of its own
    (batch,) = by_name(finished, "stage-one batch")
    assert {link.context.span_id for link in batch.links} == {
        s.context.span_id for s in (a, b, c) if s.context is not None
    }
    assert batch.parent is None and batch.attributes is not None
    assert batch.attributes["messaging.batch.message_count"] == 3


def test_the_fold_continues_the_feed_record_and_its_commands_carry_it_on(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    rule = TableRule(
        "t", "d.feed", lambda state, value, now: Folded(value, [Emit("crm.commands", "k", {"op": "x"})])
    )
    records = [traced(0, {"v": 1})]
    spans = tracing.consume("fold:t", "d", records)
    step = Engine(dl_topic).fold("d", rule, records, lambda p, k: None, NOW, spans.carry)
    spans.end()
    (fold,) = by_name(exporter.get_finished_spans(), "process d.raw")
    assert fold.context is not None and fold.attributes is not None
    assert fold.attributes["switchyard.stage"] == "fold:t"
    (command,) = step.emits
    assert header(command.headers, TRACEPARENT) == f"00-{UPSTREAM_TRACE}-{fold.context.span_id:016x}-01"


def test_untraced_steps_carry_nothing() -> None:
    records = [traced(0, {"id": "a"}), traced(1, {"id": "b", "bad": True})]
    step = Engine(dl_topic).stage_one(RULES, records, lambda raw, event_id: False, NOW)
    out, dead = step.emits
    assert out.headers == ()
    assert dl.TRACE_ID not in dict(dead.headers)
    # a dead letter that arrived traced still names its trace in `dlq list`: the traceparent it carried
    assert dl.DeadLetter("t", 0, 0, None, None, dead.headers).summary()["trace_id"] == UPSTREAM_TRACE


def test_a_sampled_out_record_still_propagates_its_context(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    not_sampled = f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-00"
    spans = tracing.consume("stage-one", "d", [traced(0, {"id": "a"}, not_sampled)])
    spans.end()
    assert header(spans.carry[0], TRACEPARENT).startswith(f"00-{UPSTREAM_TRACE}-")
    assert header(spans.carry[0], TRACEPARENT).endswith("-00")
    assert by_name(exporter.get_finished_spans(), "process d.raw") == []


def test_carried_headers_are_what_the_w3c_propagator_writes(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, _ = exported
    state = ("tracestate", b"vendor=abc,other=1")
    raw = RawRecord(b"{}", None, ((TRACEPARENT, UPSTREAM.encode()), state), "t")
    spans = tracing.consume("stage-one", "d", [raw, traced(1, {})])
    for span, carried in zip(spans.spans, spans.carry, strict=True):
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, set_span_in_context(span))
        assert {k: v.encode() for k, v in carrier.items()} == dict(carried)
    assert dict(spans.carry[0])["tracestate"] == b"vendor=abc,other=1"
    spans.end()


def test_an_email_key_is_never_an_attribute() -> None:
    assert key_attribute(b"u-123") == "u-123"
    hashed = key_attribute(b"jane.doe@example.org")
    assert hashed is not None and hashed.startswith("sha256:") and "jane" not in hashed


def test_a_webhook_continues_the_request_and_its_record_carries_the_producer_span(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    hop = tracing.webhook(
        "vome", "POST", "/webhooks/vome/{trigger}", "/webhooks/vome/x", {TRACEPARENT: UPSTREAM}, "vome.raw"
    )
    carry = hop.carry
    hop.stored(3, 42, b"u-1")
    hop.end(202)
    finished = exporter.get_finished_spans()
    (server,) = by_name(finished, "POST /webhooks/vome/{trigger}")
    (producer,) = by_name(finished, "publish vome.raw")
    assert server.kind is SpanKind.SERVER and producer.kind is SpanKind.PRODUCER
    assert server.parent is not None and format(server.parent.span_id, "016x") == UPSTREAM_SPAN
    assert producer.parent is not None and server.context is not None
    assert producer.parent.span_id == server.context.span_id
    assert server.attributes is not None and server.attributes["http.response.status_code"] == 202
    assert producer.attributes is not None and producer.attributes["messaging.kafka.offset"] == 42
    assert producer.context is not None
    assert header(carry, TRACEPARENT) == f"00-{UPSTREAM_TRACE}-{producer.context.span_id:016x}-01"


async def test_a_crm_call_is_a_client_span_of_its_first_command_linked_to_the_others(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    commands = [cmd(i, "contact.upsert", f"u{i}", {"city": "Lyon"}) for i in range(3)]
    records = [
        RawRecord(orjson.dumps(c.model_dump(mode="json")), c.contact_id.encode(), (), "crm.commands", 0, i)
        for i, c in enumerate(commands)
    ]
    spans = tracing.consume("crm-sink", "crm", records)
    sink = CrmSink(ModelAdapter(), RateLimiter(1000, 1.0), tracing=tracing)
    dead = await sink.write(
        commands, {c.command_id: spans.span_of(r) for c, r in zip(commands, records, strict=True)}
    )
    spans.end()
    assert dead == []
    finished = exporter.get_finished_spans()
    (call,) = by_name(finished, "POST /contact.upsert")
    first, *others = by_name(finished, "process crm.commands")
    assert call.kind is SpanKind.CLIENT and call.parent is not None and first.context is not None
    assert call.parent.span_id == first.context.span_id
    assert {link.context.span_id for link in call.links} == {
        o.context.span_id for o in others if o.context is not None
    }
    assert call.attributes is not None
    assert call.attributes["http.request.method"] == "POST"
    assert call.attributes["http.response.status_code"] == 200
    # each other command's span links back to the call that carried it
    assert call.context is not None
    assert all(call.context.span_id in {link.context.span_id for link in o.links} for o in others)
