"""Appointments on a real broker: webhooks in over HTTP and straight onto the raw topic, through a real worker.

Every expectation is computed from the generated documents alone (``reference_final_states``, and here which
events must be applied and what the CRM must hear), never by calling the fold, so agreement means the ingress,
stage one, dedupe, the stale-aware fold, the table and its query, and the CRM commands together do what the
domain promises despite reordering and redelivery.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core import deadletter as dl
from app.core.codecs import encode_json
from app.core.kafka import producer, read_to_end
from app.domains.appointments.generate import (
    invalid_documents,
    life_cycles,
    reference_final_states,
    shuffle_with_duplicates,
)
from app.domains.appointments.state import TABLE
from app.domains.appointments.views import APPOINTMENT_PATH, WEBHOOK_PATH
from app.ingress.webhooks import SIGNATURE_HEADER, sign
from app.paths import SAMPLES_DIR
from app.sinks.crm.commands import CrmCommand
from tests.worker import Deployment, Worker, read_all, wait_until

pytestmark = pytest.mark.integration

TABLE_LABEL = f"appointments.{TABLE}"
#: The CRM activity status each life-cycle event leaves, as the CRM integration spec names them.
ACTIVITY_STATUS = {
    "CREATE_REQUEST": "REQUESTED",
    "ACCEPT": "SCHEDULED",
    "RESCHEDULE": "SCHEDULED",
    "COMPLETE": "COMPLETED",
    "CANCEL": "CANCELED",
}


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap, f"apt{uuid.uuid4().hex[:10]}", tmp_path, SWITCHYARD_DOMAINS="appointments"
    )
    yield d
    d.stop_all()


def appointment_id(doc: dict[str, Any]) -> str:
    return str(doc["data"]["appointment"]["id"])


def path_of(appointment: str) -> str:
    return APPOINTMENT_PATH.format(appointmentId=appointment)


async def deliver(d: Deployment, w: Worker, docs: list[tuple[dict[str, Any], bool]]) -> None:
    """Send each (document, via_http) in order per appointment, waiting for the broker's (or the ingress's)
    acknowledgement before that appointment's next one, so each appointment's delivery order is the list's;
    appointments proceed concurrently."""
    per_appointment: dict[str | None, list[tuple[bytes, bytes | None, bool]]] = defaultdict(list)
    for doc, via_http in docs:
        found = doc.get("data", {}).get("appointment") if isinstance(doc.get("data"), dict) else None
        key = found.get("id") if isinstance(found, dict) else None
        per_appointment[key].append((encode_json(doc), key.encode() if key else None, via_http))
    topic = d.topic("appointments.raw")
    gate = asyncio.Semaphore(48)
    prod = producer(d.settings)
    await prod.start()
    try:
        async with httpx.AsyncClient(base_url=w.url, timeout=30) as client:

            async def one_appointment(records: list[tuple[bytes, bytes | None, bool]]) -> None:
                async with gate:
                    for body, key, via_http in records:
                        if via_http:
                            r = await client.post(WEBHOOK_PATH, content=body)
                            assert r.status_code == 202, r.text
                            assert r.json()["topic"] == topic
                        else:
                            await (await prod.send(topic, body, key=key))

            await asyncio.gather(*(one_appointment(rs) for rs in per_appointment.values()))
    finally:
        await prod.stop()


def applied_events(delivered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The documents the table must apply, in delivery order: first deliveries whose ``updatedAt`` is not older
    than any earlier-delivered event of the same appointment."""
    latest: dict[str, datetime] = {}
    seen: set[str] = set()
    out = []
    for doc in delivered:
        if doc["id"] in seen:
            continue
        seen.add(doc["id"])
        when = datetime.fromisoformat(doc["data"]["appointment"]["updatedAt"])
        appointment = appointment_id(doc)
        if appointment in latest and when < latest[appointment]:
            continue
        latest[appointment] = when
        out.append(doc)
    return out


def customer_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    for p in doc["data"]["appointment"]["participants"]:
        if p["type"] == "CUSTOMER":
            customer: dict[str, Any] = p["customer"]
            return customer
    return None


def expected_commands(applied: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    """(op, contact id, activity id, activity status, source event) of every command the applied events owe."""
    out: Counter[tuple[Any, ...]] = Counter()
    for doc in applied:
        customer = customer_of(doc)
        if customer is None:
            continue
        contact = customer.get("email") or customer.get("externalId") or customer["id"]
        out[("contact.upsert", contact, None, None, doc["id"])] += 1
        status = ACTIVITY_STATUS[doc["data"]["eventType"]]
        out[("activity.upsert", contact, appointment_id(doc), status, doc["id"])] += 1
    return out


def table_changelog(d: Deployment) -> dict[str, Any]:
    """The last value per key on the table's changelog: what a worker rebuilding the table would hold."""
    topic = f"{d.settings.app_id}-appointments-{TABLE}-changelog"

    async def go() -> list[Any]:
        return [r async for r in read_to_end(d.settings, topic)]

    records = sorted(asyncio.run(go()), key=lambda r: (r.partition, r.offset))
    return {r.key.decode(): json.loads(r.value) for r in records if r.value is not None}


def test_500_shuffled_life_cycles_over_http_and_kafka_end_in_the_reference_state(
    deployment: Deployment,
) -> None:
    rng = random.Random(8)
    delivered = shuffle_with_duplicates(rng, life_cycles(rng, 500), duplicate_rate=0.1)
    reference = reference_final_states(delivered)
    applied = applied_events(delivered)
    invalid = invalid_documents(rng)
    distinct = len({doc["id"] for doc in delivered})
    stale = sum(s["stale_count"] for s in reference.values())
    assert len(reference) == 500 and stale > 50 and len(delivered) - distinct > 100
    assert {doc["data"]["eventType"] for doc in applied} >= {"CANCEL", "COMPLETE"}

    w = deployment.worker().start()
    sends = [(doc, i % 2 == 0) for i, doc in enumerate(delivered)]
    sends += [(bad.document, i % 2 == 0) for i, bad in enumerate(invalid)]
    asyncio.run(deliver(deployment, w, sends))
    assert w.metric("switchyard_webhook_requests_total", source="appointments", status="202") == sum(
        1 for _, via_http in sends if via_http
    )

    wait_until(
        lambda: (
            w.metric("switchyard_events_in_total", domain="appointments") >= len(sends)
            and w.metric("switchyard_events_rejected_total", domain="appointments") >= len(invalid)
        ),
        timeout=120,
        interval=1.0,
        what=f"stage one to consume {len(sends)} records and dead-letter {len(invalid)}",
    )
    wait_until(
        lambda: w.metric("switchyard_table_updates_total", table=TABLE_LABEL) >= distinct,
        timeout=60,
        interval=1.0,
        what=f"{distinct} distinct events folded",
    )
    assert w.metric("switchyard_table_updates_total", table=TABLE_LABEL, outcome="stale") == stale
    assert w.metric("switchyard_table_updates_total", table=TABLE_LABEL, outcome="applied") == len(applied)
    assert w.metric("switchyard_dedupe_hits_total", domain="appointments") == len(delivered) - distinct

    answers = {a: w.get(path_of(a)) for a in reference}
    assert all(r.status_code == 200 for r in answers.values())
    states = {a: r.json() for a, r in answers.items()}
    fields = ("status", "event_id", "updated_at", "start", "applied_count", "stale_count")
    assert {a: {f: s[f] for f in fields} for a, s in states.items()} == reference
    for s in states.values():  # stale updates are recorded in the history, never applied
        assert sum(1 for h in s["history"] if h["stale"]) == s["stale_count"]
        assert [h["event_id"] for h in s["history"] if not h["stale"]][-1] == s["event_id"]
    wait_until(
        lambda: table_changelog(deployment) == states, what="the changelog to hold the answered states"
    )
    assert w.get(path_of("apt-unknown")).status_code == 404

    enriched = read_all(deployment.settings, "appointments.enriched")
    assert sorted(json.loads(r.value)["event_id"] for r in enriched) == sorted({d["id"] for d in delivered})

    dead = read_all(deployment.settings, "appointments.deadletter")
    got = Counter((r.value, dict(r.headers)[dl.CODE], dict(r.headers).get(dl.PATH)) for r in dead)
    want = Counter((encode_json(b.document), b.code.encode(), b.path.encode()) for b in invalid)
    assert got == want

    commands = read_all(deployment.settings, "crm.commands")
    parsed = [(r.key.decode(), CrmCommand.model_validate_json(r.value)) for r in commands]
    assert all(key == c.contact_id for key, c in parsed)
    assert len({c.command_id for _, c in parsed}) == len(parsed)
    assert Counter(
        (
            c.op,
            c.contact_id,
            c.activity_id,
            c.properties.get("status") if c.op == "activity.upsert" else None,
            c.source_event_id,
        )
        for _, c in parsed
    ) == expected_commands(applied)
    last_activity = {
        str(c.activity_id): c.properties["status"] for _, c in parsed if c.op == "activity.upsert"
    }
    final_event = {appointment_id(doc): doc["data"]["eventType"] for doc in applied}  # the last applied wins
    assert last_activity == {
        a: ACTIVITY_STATUS[final_event[a]] for a in last_activity
    }  # CRM ends as the table
    assert "CANCELED" in last_activity.values()


def test_webhook_needs_the_signature_when_a_secret_is_set(deployment: Deployment) -> None:
    secret = "appointments-webhook-secret"
    w = deployment.worker(SWITCHYARD_WEBHOOK_SECRET=secret).start()
    doc = life_cycles(random.Random(3), 1)[0]
    body = encode_json(doc)
    url = f"{w.url}{WEBHOOK_PATH}"

    assert httpx.post(url, content=body).status_code == 401
    wrong = {SIGNATURE_HEADER: sign("not-the-secret", body)}
    assert httpx.post(url, content=body, headers=wrong).status_code == 401
    tampered = {SIGNATURE_HEADER: sign(secret, body)}
    assert httpx.post(url, content=body + b" ", headers=tampered).status_code == 401
    assert w.get(WEBHOOK_PATH).status_code == 405
    assert read_all(deployment.settings, "appointments.raw") == []

    accepted = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sign(secret, body)})
    assert accepted.status_code == 202
    on_topic = read_all(deployment.settings, "appointments.raw")
    assert [(r.key, r.value, r.partition, r.offset) for r in on_topic] == [
        (appointment_id(doc).encode(), body, accepted.json()["partition"], accepted.json()["offset"])
    ]
    state = wait_until(
        lambda: (r := w.get(path_of(appointment_id(doc)))).status_code == 200 and r.json(),
        what="the signed webhook's appointment in the table",
    )
    assert (state["event_id"], state["status"]) == (doc["id"], doc["data"]["appointment"]["status"])
    assert w.metric("switchyard_webhook_requests_total", source="appointments", status="401") == 3
    assert w.metric("switchyard_webhook_requests_total", source="appointments", status="202") == 1


# ---- the command line --------------------------------------------------------------------------------------------
def test_check_enriches_a_sample_and_names_the_broken_field(tmp_path: Path) -> None:
    offline = Deployment("127.0.0.1:9", "aptcheck", tmp_path)  # check never dials the broker
    sample = SAMPLES_DIR / "appointments" / "reschedule-by-customer.json"
    done = offline.cli("check", "appointments", str(sample), check=False)
    assert done.returncode == 0, done.stderr
    enriched = json.loads(done.stdout)
    doc = json.loads(sample.read_bytes())
    assert enriched["appointment_id"] == appointment_id(doc)
    assert enriched["transition"] == "ACCEPTED->ACCEPTED"
    assert enriched["reschedule_shift_seconds"] == 73800  # 2024-05-11 09:30 - 2024-05-10 13:00
    doc["data"]["appointment"]["location"]["countryCode"] = "NLD"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    refused = offline.cli("check", "appointments", str(bad), check=False)
    assert refused.returncode == 1
    error = json.loads(refused.stdout)
    assert (error["stage"], error["path"]) == ("validate", "/data/appointment/location/countryCode")


def test_produce_publishes_a_sample_keyed_by_its_appointment(deployment: Deployment) -> None:
    sample = SAMPLES_DIR / "appointments" / "accept-seed-example.json"
    deployment.cli("topics", "create")
    deployment.cli("produce", "appointments", str(sample))
    [record] = read_all(deployment.settings, "appointments.raw")
    assert record.value == sample.read_bytes()
    assert record.key == appointment_id(json.loads(sample.read_bytes())).encode()
