"""Vome on a real broker: webhooks in over HTTP, through a real worker, out as projections, CRM commands and the
volunteer table; personal data planted in every field the allow-lists keep back must surface nowhere downstream.

Expectations come from the sample files and the generated documents (which trigger maps to which topic and CRM
operation is written out here, not taken from the domain's code), so agreement means the ingress, stage one,
dedupe, routing, the fold and its query together do what the domain promises.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.core import deadletter as dl
from app.core.admin import admin_client
from app.core.codecs import decode_json_object
from app.core.errors import DecodeError
from app.core.records import EVENT_TYPE_HEADER, content_event_id, load_samples
from app.domains.vome.crm import ENSURE, command_id
from app.domains.vome.generate import Generated, generate_with_secrets, invalid_variants
from app.domains.vome.rules import TRIGGERS
from app.domains.vome.views import VOLUNTEER_PATH, WEBHOOK_PATH
from app.ingress.webhooks import SIGNATURE_HEADER, sign
from app.paths import SAMPLES_DIR
from app.settings import Settings
from app.sinks.crm.commands import CrmCommand
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

WEBHOOK_SECRET = "vome-webhook-secret"
PROJECTION = {
    "booking": "vome.bookings",
    "profile": "vome.profiles",
    "form_submission": "vome.forms",
    "sequence_assignment": "vome.sequences",
}
#: The CRM operation each trigger owes (the CRM integration spec's mapping for Vome).
CRM_OP = {
    "booking.created": "activity.upsert",
    "booking.updated": "activity.upsert",
    "booking.deleted": "activity.delete",
    "profile.created": "contact.upsert",
    "profile.updated": "contact.upsert",
    "profile.archived": "contact.archive",
    "profile.deleted": "contact.erase",
    "form_submission.created": "contact.upsert",
    "form_submission.updated": "contact.upsert",
    "form_submission.deleted": "contact.upsert",
    "sequence_assignment.created": "contact.upsert",
    "sequence_assignment.updated": "contact.upsert",
    "sequence_assignment.deleted": "contact.upsert",
}
#: Everything the volunteer query may answer: the snapshot's fields, none of them personal.
SNAPSHOT_FIELDS = {
    "user_id",
    "has_profile",
    "archived",
    "bookings_count",
    "latest_form",
    "onboarding",
    "updated_at",
}
#: The volunteer every non-profile sample is about, and the one the erasure sample erases.
VOLUNTEER = "806fd448-15bc-45f8-a6dd-c3098f9c007b"
ERASED = "caae4104-e59c-42e5-ad9d-08b12502173e"
ARCHIVED = "10eccda0-289f-437e-ae5e-21c59739d29b"
ERASURE_SAMPLE = "profile.deleted--erasure-request"


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        f"vome{uuid.uuid4().hex[:10]}",
        tmp_path,
        SWITCHYARD_DOMAINS="vome",
        SWITCHYARD_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SWITCHYARD_WEBHOOK_MAX_BYTES=str(64 * 1024),
    )
    yield d
    d.stop_all()


def family(trigger: str) -> str:
    return trigger.split(".", 1)[0]


def user_of(doc: dict[str, Any]) -> str:
    ref = doc.get("user") or doc.get("user_info")
    return str(ref["id"]) if ref is not None else str(doc["id"])


def webhook_url(w: Worker, trigger: str) -> str:
    return w.url + WEBHOOK_PATH.format(trigger=trigger)


def signed(body: bytes) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(WEBHOOK_SECRET, body)}


def deliver(w: Worker, trigger: str, body: bytes) -> httpx.Response:
    r = httpx.post(webhook_url(w, trigger), content=body, headers=signed(body), timeout=30)
    assert r.status_code == 202, r.text
    return r


def volunteer(w: Worker, user: str) -> httpx.Response:
    return w.get(VOLUNTEER_PATH.format(userId=user))


def headers_of(rec: Any) -> dict[str, bytes]:
    return dict(rec.headers)


def dump_topics(settings: Settings, owned: Callable[[str], bool]) -> dict[str, list[Any]]:
    """Every record of every topic ``owned`` picks (outputs, changelogs, Faust's own), with one consumer."""

    async def go() -> dict[str, list[Any]]:
        admin = admin_client(settings)
        await admin.start()
        try:
            topics = sorted(t for t in await admin.list_topics() if owned(t))
            described = await admin.describe_topics(topics)
        finally:
            await admin.close()
        tps = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
        out: dict[str, list[Any]] = {t: [] for t in topics}
        consumer = AIOKafkaConsumer(
            **settings.kafka_client_options(),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_uncommitted",
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            await consumer.seek_to_beginning(*tps)
            pending = {tp for tp in tps if ends[tp] > 0}
            async with asyncio.timeout(60):
                while pending:
                    for tp, records in (await consumer.getmany(*pending, timeout_ms=1000)).items():
                        out[tp.topic].extend(records)
                    pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
            return out
        finally:
            await consumer.stop()

    return asyncio.run(go())


def accepted_by_ingress(g: Generated) -> bool:
    """Whether the webhook takes ``g`` (a known trigger and a JSON object); the rest go straight to Kafka."""
    if g.trigger not in TRIGGERS:
        return False
    try:
        decode_json_object(g.value)
    except DecodeError:
        return False
    return True


def test_samples_secrets_and_erasure_through_the_webhook(deployment: Deployment) -> None:
    s = deployment.settings
    w = deployment.worker().start()
    samples = {x.name: x for x in load_samples("vome")}
    assert {x.event_type for x in samples.values()} == set(TRIGGERS)
    erasure = samples.pop(ERASURE_SAMPLE)

    # Accepted deliveries, as (trigger, body): every sample but the erasure, plus the erased volunteer's profile
    # so there is something to erase, plus one planted-secrets document per trigger.
    accepted: list[tuple[str, bytes]] = [(x.event_type or "", x.value) for x in samples.values()]
    accepted.append(("profile.created", erasure.value))
    rng = random.Random(6)
    secrets: list[str] = []
    planted: dict[str, dict[str, Any]] = {}
    for trigger in TRIGGERS:
        _, doc, marks = generate_with_secrets(rng, trigger)
        assert marks, trigger
        secrets += marks
        planted[trigger] = doc
        accepted.append((trigger, json.dumps(doc).encode()))
    broken = [
        g
        for trigger in (
            "booking.updated",
            "profile.updated",
            "form_submission.created",
            "sequence_assignment.created",
        )
        for g in invalid_variants(trigger, planted[trigger])
    ]
    assert {g.code for g in broken} >= {
        "DECODE-JSON",
        "VOME-UNKNOWN-TRIGGER",
        "SCHEMA-TYPE",
        "ENRICH-NEGATIVE-HOURS",
    }

    for trigger, body in accepted:
        r = deliver(w, trigger, body)
        assert r.json()["topic"] == deployment.topic("vome.raw")
    over_http = [g for g in broken if accepted_by_ingress(g)]
    for g in over_http:
        deliver(w, g.trigger or "", g.value)
    produce(s, "vome.raw", [(g.key, g.value, list(g.headers)) for g in broken if not accepted_by_ingress(g)])
    assert len(over_http) > 20 and len(broken) - len(over_http) >= 6

    # Redeliveries: the same webhook again, and the same file through `switchyard produce`.
    again = samples["booking.created--food-bank-shift"]
    deliver(w, "booking.created", again.value)
    repeated = SAMPLES_DIR / "vome" / "profile.created--new-volunteer.json"
    deployment.cli("produce", "vome", "--type", "profile.created", str(repeated))

    wait_until(
        lambda: (
            w.metric("switchyard_events_accepted_total", domain="vome") == len(accepted)
            and w.metric("switchyard_dedupe_hits_total", domain="vome") == 2
            and w.metric("switchyard_events_rejected_total", domain="vome") == len(broken)
        ),
        timeout=90,
        what="every delivery accepted, deduplicated or dead-lettered",
    )
    expected_volunteer = {
        "user_id": VOLUNTEER,
        "has_profile": True,
        "archived": False,
        "bookings_count": 1,  # a24810a3 created and updated; a6ec3435 deleted
        "latest_form": {
            "submission_id": "8cacb1e4-15f0-49e6-adee-2586d4883439",
            "form_id": "7a3eefbf-d0a0-49f3-aa65-75bbd1e022a3",
            "status": "approved",
            "submitted_at": "2025-03-10T18:23:00Z",
        },
        "onboarding": {"assignments": 1, "steps_done": 1, "steps_total": 3},  # the retired one is gone
    }
    answer = wait_until(
        lambda: (
            (r := volunteer(w, VOLUNTEER)).status_code == 200
            and {k: v for k, v in r.json().items() if k != "updated_at"} == expected_volunteer
            and r.json()
        ),
        what="the volunteer's snapshot after every sample",
    )
    assert set(answer) == SNAPSHOT_FIELDS
    archived = wait_until(lambda: (r := volunteer(w, ARCHIVED)).status_code == 200 and r.json())
    assert (archived["has_profile"], archived["archived"], archived["bookings_count"]) == (True, True, 0)
    assert wait_until(lambda: volunteer(w, ERASED).status_code == 200, what="the profile about to be erased")

    deliver(w, "profile.deleted", erasure.value)
    wait_until(lambda: volunteer(w, ERASED).status_code == 404, what="the erased volunteer's 404")
    assert volunteer(w, "no-such-volunteer").status_code == 404

    def erased_snapshot() -> Any:
        last = {r.key: r.value for r in read_all(s, "vome.volunteers")}
        return ERASED.encode() in last and last[ERASED.encode()] is None

    wait_until(erased_snapshot, what="the tombstone on vome.volunteers")
    deliveries = [*accepted, ("profile.deleted", erasure.value)]
    event_ids = {content_event_id(t, json.loads(b)): (t, json.loads(b)) for t, b in deliveries}
    assert len(event_ids) == len(deliveries)

    # One projection per non-erasing delivery, on its family's topic, keyed by the volunteer.
    projected: Counter[str] = Counter()
    for topic in PROJECTION.values():
        for r in read_all(s, topic):
            if r.value is None:
                continue
            value = json.loads(r.value)
            trigger, doc = event_ids[value["event_id"]]
            assert (topic, r.key.decode(), value["trigger"]) == (
                PROJECTION[family(trigger)],
                user_of(doc),
                trigger,
            )
            projected[value["event_id"]] += 1
    assert projected == Counter(
        {e: 1 for e, (trigger, _) in event_ids.items() if trigger != "profile.deleted"}
    )

    # One CRM command per delivery, of the operation its trigger owes, sent by the volunteers fold; before a
    # volunteer's first activity-like command (when no profile came first), the contact it ensures.
    records = read_all(s, "crm.commands")
    commands = [(r.key.decode(), CrmCommand.model_validate_json(r.value)) for r in records]
    ensures = [c for _, c in commands if c.command_id == command_id(c.source_event_id, ENSURE, c.contact_id)]
    own = [(k, c) for k, c in commands if c not in ensures]
    assert Counter(c.source_event_id for _, c in own) == Counter(dict.fromkeys(event_ids, 1))
    for key, c in own:
        trigger, doc = event_ids[c.source_event_id]
        assert (key, c.contact_id, c.op, c.source) == (user_of(doc), user_of(doc), CRM_OP[trigger], "vome")
    assert len({c.contact_id for c in ensures}) == len(ensures) and VOLUNTEER in {
        c.contact_id for c in ensures
    } | {
        c.contact_id
        for _, c in own
        if c.op == "contact.upsert" and event_ids[c.source_event_id][0].startswith("profile.")
    }
    for ensure in ensures:
        assert ensure.op == "contact.upsert" and set(ensure.properties) <= {
            "vome_user_id", "firstname", "lastname", "email", "phone", "source_system"
        }  # fmt: skip
    # every write that needs the contact comes after its ensure or a profile's own upsert, in partition order
    contact_known: set[str] = set()
    for c in [c for _, c in commands]:
        trigger = event_ids[c.source_event_id][0]
        if c in ensures or trigger.startswith("profile."):
            contact_known.add(c.contact_id)
        elif c.op != "activity.delete":
            assert c.contact_id in contact_known, (trigger, c.contact_id)
    erase = [c for _, c in commands if c.op == "contact.erase" and c.contact_id == ERASED]
    assert len(erase) == 1 and erase[0].properties == {}

    # Erasure: a tombstone for the volunteer on every projection topic; the feed carries the erasure itself.
    for topic in PROJECTION.values():
        assert (ERASED.encode(), None) in {(r.key, r.value) for r in read_all(s, topic)}, topic
    erasures = [json.loads(r.value) for r in read_all(s, "vome.volunteers.feed") if r.key == ERASED.encode()]
    assert erasures[-1]["trigger"] == "profile.deleted" and erasures[-1]["crm"][0]["op"] == "contact.erase"

    # Dead letters: every broken delivery once, untouched, with its code.
    dead = read_all(s, "vome.deadletter")
    assert Counter((r.value, headers_of(r)[dl.CODE].decode()) for r in dead) == Counter(
        (g.value, g.code) for g in broken
    )

    # Planted secrets: on the raw topic (so the scan below can fail) and nowhere else.
    raw = b"".join(r.value or b"" for r in read_all(s, "vome.raw"))
    assert all(m.encode() in raw for m in secrets)
    prefix, app_id = deployment.topic(""), s.app_id
    topics = dump_topics(s, lambda t: t.startswith((prefix, app_id)))
    for scanned in ("crm.commands", "vome.volunteers", "vome.deadletter", "vome.profiles"):
        assert topics[deployment.topic(scanned)], f"nothing read from {scanned}: the scan would prove nothing"
    assert topics[f"{app_id}-vome-volunteers-changelog"] and topics[f"{app_id}-vome-seen-changelog"]
    downstream: list[bytes] = []
    for topic, records in topics.items():
        if topic == deployment.topic("vome.raw"):
            continue
        keep_value = topic != deployment.topic("vome.deadletter")  # a dead letter *is* the original body
        for r in records:
            downstream += [r.key or b"", (r.value or b"") if keep_value else b""]
            downstream += [k.encode() + b"=" + v for k, v in r.headers]
    downstream += [w.log.read_bytes(), w.get("/metrics").content, json.dumps(answer).encode()]
    blob = b"\n".join(downstream)
    leaked = [m for m in secrets if m.encode() in blob]
    assert leaked == [], f"{len(leaked)} planted values escaped vome.raw"


def test_ingress_refuses_what_cannot_become_a_record(deployment: Deployment) -> None:
    w = deployment.worker().start()
    sample = next(x for x in load_samples("vome") if x.event_type == "booking.created")
    url = webhook_url(w, "booking.created")

    assert httpx.post(url, content=sample.value).status_code == 401
    wrong = {SIGNATURE_HEADER: sign("not-the-secret", sample.value)}
    assert httpx.post(url, content=sample.value, headers=wrong).status_code == 401
    assert httpx.post(url, content=sample.value + b" ", headers=signed(sample.value)).status_code == 401
    too_big = b'{"id": "' + b"x" * (64 * 1024) + b'"}'
    assert httpx.post(url, content=too_big, headers=signed(too_big)).status_code == 413
    not_json = b"id=1&user=2"
    assert httpx.post(url, content=not_json, headers=signed(not_json)).status_code == 400
    unknown = webhook_url(w, "booking.exploded")
    assert httpx.post(unknown, content=sample.value, headers=signed(sample.value)).status_code == 404
    assert httpx.get(url).status_code == 405
    assert read_all(deployment.settings, "vome.raw") == []

    ok = deliver(w, "booking.created", sample.value).json()
    [on_topic] = read_all(deployment.settings, "vome.raw")
    assert (on_topic.value, on_topic.partition, on_topic.offset) == (
        sample.value,
        ok["partition"],
        ok["offset"],
    )
    assert (
        on_topic.key == json.loads(sample.value)["id"].encode()
    )  # keyed by the booking, as `produce` keys it
    assert headers_of(on_topic) == {EVENT_TYPE_HEADER: b"booking.created"}
    for status, count in (("401", 3), ("413", 1), ("400", 1), ("404", 1), ("202", 1)):
        assert w.metric("switchyard_webhook_requests_total", source="vome", status=status) == count, status


@pytest.fixture
def offline(tmp_path: Path) -> Deployment:
    """``switchyard check`` needs no broker: the bootstrap address is never dialled."""
    return Deployment("127.0.0.1:9", "vomecheck", tmp_path)


@pytest.mark.parametrize("trigger", ["booking.updated", "sequence_assignment.updated"])
def test_check_outputs_show_the_projection_and_the_crm_command(offline: Deployment, trigger: str) -> None:
    [sample] = [x for x in load_samples("vome") if x.event_type == trigger]
    path = SAMPLES_DIR / "vome" / f"{sample.name}.json"
    done = offline.cli(
        "check", "vome", "--type", trigger, str(path), "--outputs", "--now", "2025-04-01T00:00:00Z"
    )
    outputs = json.loads(done.stdout)["outputs"]
    by_topic = {o["topic"]: o for o in outputs}
    assert sorted(by_topic) == sorted([PROJECTION[family(trigger)], "vome.volunteers.feed"])
    doc = json.loads(sample.value)
    projection = by_topic[PROJECTION[family(trigger)]]
    assert (projection["key"], projection["value"]["trigger"]) == (VOLUNTEER, trigger)
    assert projection["value"]["event_id"] == content_event_id(trigger, doc)
    feed = by_topic["vome.volunteers.feed"]["value"]
    [command] = [CrmCommand.model_validate(c) for c in feed["crm"]]
    assert CrmCommand.model_validate(feed["ensure"]).properties["vome_user_id"] == VOLUNTEER
    assert (command.op, command.contact_id, command.issued_at.isoformat()) == (
        CRM_OP[trigger],
        VOLUNTEER,
        "2025-04-01T00:00:00+00:00",
    )


def test_check_names_the_missing_trigger_and_exits_1(offline: Deployment) -> None:
    path = SAMPLES_DIR / "vome" / "profile.created--new-volunteer.json"
    done = offline.cli("check", "vome", str(path), check=False)
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == "VOME-UNKNOWN-TRIGGER"
    refused = offline.cli("check", "vome", "--type", "profile.exploded", str(path), check=False)
    assert refused.returncode == 2 and b"profile.created" in refused.stderr
