"""One trace per record, end to end, on a real Jaeger: a Vome booking webhook to the CRM call (and a Pismo record
through the exactly-once stage, at the end).

A worker (Vome + the CRM sink, the reference CRM behind it) exports OTLP to a Jaeger all-in-one built from the Go
module proxy (``tests/jaeger.py``). The booking is POSTed with a W3C ``traceparent``; Jaeger's HTTP API must then
hold, in that very trace, the ingress (server span, producer span of the raw record), stage one, the volunteers
fold and the CRM sink's command spans, and the CRM's HTTP client spans, each the child of the hop before. A broken
booking in a trace of its own must end in an ERROR span naming its code, stage and path, and ``dlq list`` must
print its trace id. No span may carry the booking's personal data.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.domains.vome.views import WEBHOOK_PATH
from app.paths import SAMPLES_DIR
from app.sinks.crm.benchmark import TOKEN
from tests.integration.test_crm_sink import Crm
from tests.jaeger import Jaeger, tags
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

BOOKING = SAMPLES_DIR / "vome" / "booking.created--food-bank-shift.json"


@pytest.fixture
def jaeger(tmp_path: Path) -> Iterator[Jaeger]:
    j = Jaeger(tmp_path / "jaeger.log")
    yield j
    j.stop()


@pytest.fixture
def traced(kafka_bootstrap: str, tmp_path: Path, jaeger: Jaeger) -> Iterator[tuple[Deployment, Worker]]:
    crm = Crm(tmp_path)
    d = Deployment(
        kafka_bootstrap,
        f"trace{uuid.uuid4().hex[:8]}",
        tmp_path,
        SWITCHYARD_DOMAINS="vome,crm",
        SWITCHYARD_CRM_BASE_URL=crm.url,
        SWITCHYARD_CRM_TOKEN=TOKEN,
    )
    d.cli("topics", "create")
    w = d.worker(
        OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_endpoint,
        OTEL_SERVICE_NAME=f"switchyard-{d.name}",
        OTEL_TRACES_SAMPLER="parentbased_always_on",
        OTEL_BSP_SCHEDULE_DELAY="200",
    )
    try:
        yield d, w.start()
    finally:
        d.stop_all()
        crm.stop()


def post(w: Worker, trigger: str, body: bytes, trace_id: str) -> None:
    traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    r = httpx.post(
        w.url + WEBHOOK_PATH.format(trigger=trigger),
        content=body,
        headers={"traceparent": traceparent},
        timeout=30,
    )
    assert r.status_code == 202, r.text


def named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["operationName"] == name]


def one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = named(spans, name)
    assert len(found) == 1, f"{name}: {len(found)} spans in {[s['operationName'] for s in spans]}"
    return found[0]


def parent_of(span: dict[str, Any]) -> str | None:
    return next((r["spanID"] for r in span.get("references", ()) if r["refType"] == "CHILD_OF"), None)


def test_a_vome_booking_is_one_trace_from_webhook_to_crm_call(
    traced: tuple[Deployment, Worker], jaeger: Jaeger
) -> None:
    d, w = traced
    body = BOOKING.read_bytes()
    trace_id = secrets.token_hex(16)
    post(w, "booking.created", body, trace_id)

    raw, feed, commands = d.topic("vome.raw"), d.topic("vome.volunteers.feed"), d.topic("crm.commands")
    wanted = {
        "POST /webhooks/vome/{trigger}",
        f"publish {raw}",
        f"process {raw}",
        f"process {feed}",
        f"process {commands}",
        "POST /crm/v3/objects/contacts/batch/upsert",
        "POST /crm/v3/objects/meetings/batch/upsert",
    }

    def complete() -> list[dict[str, Any]] | None:
        spans = jaeger.trace(trace_id)
        return spans if wanted <= {s["operationName"] for s in spans} else None

    spans = wait_until(complete, timeout=90, interval=0.5, what="the booking's whole trace in Jaeger")
    assert {s["traceID"] for s in spans} == {trace_id}

    server = one(spans, "POST /webhooks/vome/{trigger}")
    publish = one(spans, f"publish {raw}")
    stage_one = one(spans, f"process {raw}")
    fold = one(spans, f"process {feed}")
    sink = named(spans, f"process {commands}")  # the ensure (contact.upsert) and the meeting
    contact_call = named(spans, "POST /crm/v3/objects/contacts/batch/upsert")
    meeting_call = one(spans, "POST /crm/v3/objects/meetings/batch/upsert")

    # each hop the child of the one before it
    assert tags(server)["span.kind"] == "server" and tags(server)["http.response.status_code"] == 202
    assert parent_of(publish) == server["spanID"] and tags(publish)["span.kind"] == "producer"
    assert parent_of(stage_one) == publish["spanID"]
    assert parent_of(fold) == stage_one["spanID"]
    assert len(sink) == 2 and {parent_of(s) for s in sink} == {fold["spanID"]}
    sink_ids = {s["spanID"] for s in sink}
    assert {parent_of(c) for c in [*contact_call, meeting_call]} <= sink_ids
    # messaging and HTTP semantic conventions
    st = tags(stage_one)
    assert st["messaging.system"] == "kafka" and st["messaging.destination.name"] == raw
    assert st["switchyard.stage"] == "stage-one" and isinstance(st["messaging.kafka.offset"], int)
    assert tags(fold)["switchyard.stage"] == "fold:volunteers"
    call = tags(meeting_call)
    assert call["span.kind"] == "client" and call["http.request.method"] == "POST"
    assert call["http.response.status_code"] == 200
    assert stage_one["process"]["serviceName"] == f"switchyard-{d.name}"

    # no personal data of the booking on any span
    doc = json.loads(body)
    personal = [doc["user"][f] for f in ("first_name", "last_name", "email", "address", "phone_number")]
    exported = json.dumps(spans, ensure_ascii=False)
    assert [p for p in personal if p in exported] == []

    # a broken booking: its own trace, an ERROR span with code, stage and path; `dlq list` names the trace
    broken = json.loads(body)
    broken["shift"]["spots"] = "many"
    broken_trace = secrets.token_hex(16)
    post(w, "booking.created", json.dumps(broken).encode(), broken_trace)

    def failed() -> dict[str, Any] | None:
        found = named(jaeger.trace(broken_trace), f"process {raw}")
        return found[0] if found else None

    dead = tags(wait_until(failed, timeout=60, interval=0.5, what="the broken booking's span"))
    assert dead["otel.status_code"] == "ERROR" and dead["error"] is True
    assert dead["switchyard.error.stage"] == "validate" and dead["switchyard.error.code"]
    assert dead["switchyard.error.path"] == "/shift/spots"
    listed = d.cli("dlq", "list", "--domain", "vome")
    letters = [json.loads(line) for line in listed.stdout.decode().splitlines() if line.startswith("{")]
    assert [x["trace_id"] for x in letters] == [broken_trace]


def test_the_exactly_once_stage_continues_a_raw_records_trace(
    kafka_bootstrap: str, tmp_path: Path, jaeger: Jaeger
) -> None:
    """Pismo's stage one runs in Kafka transactions (app/core/runtime/eos.py): its span continues the context the
    raw record carries, and its outputs carry that span on."""
    d = Deployment(kafka_bootstrap, f"traceeos{uuid.uuid4().hex[:8]}", tmp_path, SWITCHYARD_DOMAINS="pismo")
    try:
        d.cli("topics", "create")
        d.worker(
            OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_endpoint,
            OTEL_SERVICE_NAME=f"switchyard-{d.name}",
            OTEL_BSP_SCHEDULE_DELAY="200",
        ).start()
        trace_id, upstream = secrets.token_hex(16), secrets.token_hex(8)
        body = (SAMPLES_DIR / "pismo" / "success-update.json").read_bytes()
        produce(
            d.settings,
            "pismo.raw",
            [(b"k", body, [("traceparent", f"00-{trace_id}-{upstream}-01".encode())])],
        )
        raw = d.topic("pismo.raw")

        def stage_one() -> dict[str, Any] | None:
            found = named(jaeger.trace(trace_id), f"process {raw}")
            return found[0] if found else None

        span = wait_until(stage_one, timeout=90, interval=0.5, what="Pismo's stage-one span in Jaeger")
        assert parent_of(span) == upstream and tags(span)["switchyard.stage"] == "stage-one"
        outputs = [r for r in read_all(d.settings, "audit.migration") if r.headers]
        carried = [dict(r.headers).get("traceparent", b"").decode() for r in outputs]
        assert carried == [f"00-{trace_id}-{span['spanID']}-01"]
    finally:
        d.stop_all()
