"""Appointments' pure side: process / route / enrichment, the state fold, CRM commands and the generators."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.codecs import encode_json
from app.core.errors import DecodeError, EnrichError, RecordError, ValidationFailed
from app.core.records import Processed, RawRecord
from app.domains.appointments import generate
from app.domains.appointments.crm import crm_commands
from app.domains.appointments.enrich import pick_translation
from app.domains.appointments.models import Translation
from app.domains.appointments.rules import ENRICHED_TOPIC, RULES, key_of
from app.domains.appointments.state import HISTORY_LIMIT, fold_appointment
from app.sinks.crm.commands import CRM_TOPIC, CrmCommand, as_emit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
APPOINTMENT_ID = "apt-7c1e9d42-0b3a-4f6e-8d21-5a9c3e7b1f60"


def sample(name: str) -> dict[str, Any]:
    found = next(s for s in RULES.samples() if s.name == name)
    doc: dict[str, Any] = json.loads(found.value)
    return doc


def run(doc: Any) -> Processed:
    return RULES.process(RawRecord(value=encode_json(doc), topic="appointments.raw"), NOW)


def enriched(doc: Any) -> dict[str, Any]:
    return run(doc).enriched


def fold_all(values: list[dict[str, Any]]) -> tuple[Any, list[Any]]:
    state: Any = None
    emits: list[Any] = []
    for value in values:
        folded = fold_appointment(state, value, NOW)
        state = folded.state
        emits.extend(folded.emits)
    return state, emits


# ---- process ---------------------------------------------------------------------------------------------


def test_seed_example_processed() -> None:
    p = run(sample("accept-seed-example"))
    assert p.event_id == "wh-evt-8f3c2a71-5d4e-4b1a-9c0e-2f6d8b7a1e03"
    assert p.key == APPOINTMENT_ID
    assert p.event_type == "ACCEPT"
    assert p.event_time == datetime(2024, 5, 4, 9, 42, tzinfo=UTC)
    e = p.enriched
    assert e["duration_minutes"] == 45.0
    assert (
        e["lead_time_seconds"]
        == (
            datetime(2024, 5, 10, 13, tzinfo=UTC) - datetime(2024, 5, 2, 14, 5, 12, tzinfo=UTC)
        ).total_seconds()
    )
    assert e["reschedule_shift_seconds"] == 0
    assert e["transition"] == "ACCEPTED->ACCEPTED"
    assert e["primary_employee_id"] == "emp-5b2d8e1f"
    assert e["customer"] is None
    assert e["subject_name"] == "Mortgage advice"
    assert e["status_group"] == "confirmed"


def test_reschedule_enrichment() -> None:
    e = enriched(sample("reschedule-by-customer"))
    assert e["reschedule_shift_seconds"] == 20 * 3600 + 30 * 60
    assert e["previous_start"] == "2024-05-10T13:00:00Z"
    assert e["start"] == "2024-05-11T09:30:00Z"
    assert e["customer"] == {
        "id": "cust-2f8a6c3e",
        "external_id": "CRM-CUST-55120",
        "email": "lotte.jansen@mail.example.org",
    }


def test_first_event_has_no_previous() -> None:
    doc = sample("accept-seed-example")
    doc["data"]["previousAppointment"] = None
    e = enriched(doc)
    assert e["transition"] == "NONE->ACCEPTED"
    assert e["previous_status"] is None
    assert e["reschedule_shift_seconds"] is None


def test_enriched_is_an_allow_list() -> None:
    """Names, phone numbers, free text, notes, tokens and URLs stay on the raw topic."""
    doc = sample("reschedule-by-customer")
    text = json.dumps(enriched(doc))
    a = doc["data"]["appointment"]
    leaks = [
        a["internalNotes"],
        a["messageForCustomer"],
        a["answers"][0]["value"],
        a["participants"][0]["token"],
        a["participants"][0]["videoUrl"],
        a["participants"][0]["employee"]["email"],
        a["participants"][0]["employee"]["lastName"],
        a["participants"][1]["customer"]["firstName"],
        a["participants"][1]["customer"]["phoneNumber"],
        a["participants"][1]["customer"]["location"]["postalCode"],
    ]
    assert [leak for leak in leaks if leak in text] == []


def test_primary_employee_preferred_over_first_listed() -> None:
    doc = sample("accept-seed-example")
    participants = doc["data"]["appointment"]["participants"]
    secondary = copy.deepcopy(participants[0])
    secondary["role"] = "SECONDARY"
    secondary["employee"]["id"] = "emp-secondary"
    participants.insert(0, secondary)
    assert enriched(doc)["primary_employee_id"] == "emp-5b2d8e1f"
    participants.pop(1)
    assert enriched(doc)["primary_employee_id"] == "emp-secondary"


def test_pick_translation_prefers_languages_in_order() -> None:
    entries = [Translation(value="Hypotheek", language="nl"), Translation(value="Mortgage", language="en")]
    assert pick_translation(entries, ["fr", "EN"]) == "Mortgage"
    assert pick_translation(entries, ["de"]) == "Hypotheek"
    assert pick_translation([], ["en"]) is None


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"", "DECODE-EMPTY"),
        (None, "DECODE-EMPTY"),
        (b'{"id": ', "DECODE-JSON"),
        (b"[1]", "DECODE-NOT-OBJECT"),
    ],
)
def test_undecodable(value: bytes | None, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        RULES.process(RawRecord(value=value), NOW)
    assert info.value.code == code


def test_end_before_start_is_an_enrich_error() -> None:
    doc = sample("accept-seed-example")
    doc["data"]["appointment"]["end"] = "2024-05-10T12:00:00+00:00"
    with pytest.raises(EnrichError) as info:
        run(doc)
    assert info.value.as_dict()["stage"] == "enrich"
    assert (info.value.code, info.value.path) == ("ENRICH-END-BEFORE-START", "/data/appointment/end")


@pytest.mark.parametrize("stamp", ["2024-05-10T13:00:00", "tomorrow", 1715346000])
def test_timestamps_need_an_offset(stamp: Any) -> None:
    doc = sample("accept-seed-example")
    doc["data"]["appointment"]["start"] = stamp
    with pytest.raises(ValidationFailed) as info:
        run(doc)
    assert (info.value.code, info.value.path) == ("SCHEMA-FORMAT", "/data/appointment/start")


def test_integral_coordinates_accepted_strings_are_not() -> None:
    doc = sample("accept-seed-example")
    doc["data"]["appointment"]["location"]["geolocation"]["latitude"] = 52
    run(doc)
    doc["data"]["appointment"]["location"]["geolocation"]["latitude"] = "52.1"
    with pytest.raises(ValidationFailed) as info:
        run(doc)
    assert info.value.path == "/data/appointment/location/geolocation/latitude"


def test_error_messages_never_carry_values() -> None:
    for inv in generate.invalid_documents(random.Random(5)):
        marked = json.loads(json.dumps(inv.document).replace('"NOT_A_VALUE"', '"SECRET-MARKER"'))
        with pytest.raises(RecordError) as info:
            run(marked)
        assert "SECRET-MARKER" not in str(info.value)
        assert "x" * 10 not in str(info.value)


# ---- route / key -----------------------------------------------------------------------------------------


def test_route_publishes_enriched_keyed_by_appointment() -> None:
    p = run(sample("reschedule-by-customer"))
    emits = RULES.route(p, NOW)
    assert [(e.topic, e.key) for e in emits] == [(ENRICHED_TOPIC, APPOINTMENT_ID)]
    assert emits[0].value == p.enriched
    assert RULES.tables[0].source_topic == ENRICHED_TOPIC


def test_key_of() -> None:
    assert key_of(encode_json(sample("accept-seed-example")), None) == APPOINTMENT_ID.encode()
    assert key_of(b"not json", None) is None
    assert key_of(b'{"data": {"appointment": []}}', None) is None


# ---- CRM commands ----------------------------------------------------------------------------------------


def commands(value: dict[str, Any]) -> list[CrmCommand]:
    emits = [as_emit(c) for c in crm_commands(value)]
    assert all(e.topic == CRM_TOPIC for e in emits)
    parsed = [CrmCommand.model_validate(e.value) for e in emits]
    assert [e.key for e in emits] == [c.contact_id for c in parsed]
    return parsed


def test_customer_with_email_is_matched_by_email() -> None:
    upsert, activity = commands(enriched(sample("reschedule-by-customer")))
    assert (upsert.op, upsert.id_property, upsert.contact_id) == (
        "contact.upsert",
        "email",
        "lotte.jansen@mail.example.org",
    )
    assert upsert.properties["external_id"] == "CRM-CUST-55120"
    assert activity.op == "activity.upsert"
    assert activity.activity_id == APPOINTMENT_ID
    assert activity.properties["title"] == "Mortgage advice"
    assert activity.properties["status"] == "SCHEDULED"
    assert (activity.properties["start"], activity.properties["end"]) == (
        "2024-05-11T09:30:00Z",
        "2024-05-11T10:15:00Z",
    )
    assert activity.issued_at == datetime(2024, 5, 5, 18, 3, 27, tzinfo=UTC)


def test_customer_without_email_is_matched_by_external_id_then_id() -> None:
    value = enriched(sample("reschedule-by-customer"))
    value["customer"] = {"id": "cust-1", "external_id": "CRM-9", "email": None}
    upsert, _ = commands(value)
    assert (upsert.id_property, upsert.contact_id, upsert.properties.get("email")) == (
        "external_id",
        "CRM-9",
        None,
    )
    value["customer"] = {"id": "cust-1", "external_id": None, "email": None}
    upsert, _ = commands(value)
    assert (upsert.id_property, upsert.contact_id, upsert.properties["external_id"]) == (
        "external_id",
        "cust-1",
        "cust-1",
    )


def _with_customer(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    customer = next(p for p in out["data"]["appointment"]["participants"] if p["type"] == "CUSTOMER")
    customer["customer"].update(fields)
    return out


def _email(length: int) -> str:
    return "c" * (length - len("@mail.example.org")) + "@mail.example.org"


@pytest.mark.parametrize("length", [256, 300, 320])
def test_an_email_the_crm_cannot_hold_keeps_the_appointment_and_names_the_contact_by_external_id(
    length: int,
) -> None:
    """The seed allows e-mails of 320 characters; the CRM holds ids of 255. The appointment is enriched (and so
    published and stored); its contact is named by the customer's external id, without the e-mail."""
    email = _email(length)
    e = enriched(_with_customer(sample("reschedule-by-customer"), email=email))
    assert e["customer"]["email"] == email
    upsert, activity = commands(e)
    assert (upsert.id_property, upsert.contact_id) == ("external_id", "CRM-CUST-55120")
    assert "email" not in upsert.properties
    assert (activity.contact_id, activity.activity_id) == ("CRM-CUST-55120", APPOINTMENT_ID)
    state, emits = fold_all([e])
    assert state["appointment_id"] == APPOINTMENT_ID
    assert [c.contact_id for c in (CrmCommand.model_validate(x.value) for x in emits)] == [
        "CRM-CUST-55120"
    ] * 2


def test_an_email_of_255_still_names_the_contact() -> None:
    email = _email(255)
    upsert, _ = commands(enriched(_with_customer(sample("reschedule-by-customer"), email=email)))
    assert (upsert.id_property, upsert.contact_id, upsert.properties["email"]) == ("email", email, email)


def test_without_an_id_the_crm_can_hold_the_commands_still_name_the_customer_for_the_sink_to_refuse() -> None:
    """Nothing fits: the appointment is kept and the commands carry the e-mail; the CRM sink dead-letters them
    (CRM-ID-TOO-LONG, tested in test_crm_sink)."""
    email = _email(320)
    doc = _with_customer(sample("reschedule-by-customer"), email=email, externalId=None, id="i" * 300)
    upsert, activity = commands(enriched(doc))
    assert (upsert.id_property, upsert.contact_id, activity.contact_id) == ("email", email, email)


def test_an_appointment_id_the_crm_cannot_hold_is_still_enriched() -> None:
    doc = copy.deepcopy(sample("reschedule-by-customer"))
    doc["data"]["appointment"]["id"] = "a" * 256
    e = enriched(doc)
    assert e["appointment_id"] == "a" * 256
    upsert, activity = commands(e)
    assert upsert.contact_id == "lotte.jansen@mail.example.org"
    assert activity.activity_id == "a" * 256


def test_no_customer_no_commands() -> None:
    assert crm_commands(enriched(sample("accept-seed-example"))) == []


@pytest.mark.parametrize(
    ("status", "event_type", "expected"),
    [
        ("ACCEPTED", "ACCEPT", "SCHEDULED"),
        ("COMPLETED", "COMPLETE", "COMPLETED"),
        ("NO_SHOW", "GENERIC_UPDATE", "NO_SHOW"),
        ("CANCELLED", "CANCEL", "CANCELED"),
        ("ACCEPTED", "CANCEL", "CANCELED"),
        ("INCOMING_REQUEST", "CREATE_REQUEST", "REQUESTED"),
        ("OUTGOING_INVITE", "CREATE", "REQUESTED"),
        ("ALTERNATIVE_DATE_REQUESTED", "REQUEST_ALTERNATIVE_DATE", "REQUESTED"),
    ],
)
def test_activity_status_mapping(status: str, event_type: str, expected: str) -> None:
    doc = sample("reschedule-by-customer")
    doc["data"]["appointment"]["status"] = status
    doc["data"]["eventType"] = event_type
    _, activity = commands(enriched(doc))
    assert activity.properties["status"] == expected


def test_command_ids_are_deterministic_per_event() -> None:
    doc = sample("reschedule-by-customer")
    first = [c.command_id for c in commands(enriched(doc))]
    assert first == [c.command_id for c in commands(enriched(copy.deepcopy(doc)))]
    doc["id"] = "wh-evt-another"
    assert set(first).isdisjoint(c.command_id for c in commands(enriched(doc)))


def test_subject_without_name_gets_a_default_title() -> None:
    doc = sample("reschedule-by-customer")
    doc["data"]["appointment"]["subject"]["translations"] = None
    _, activity = commands(enriched(doc))
    assert activity.properties["title"] == "Appointment"


# ---- table fold ------------------------------------------------------------------------------------------


def lifecycle_values(seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [enriched(d) for d in generate.life_cycle(rng, "apt-1", generate.EPOCH)]


def test_fold_applies_in_order_with_transition_history() -> None:
    values = lifecycle_values()
    state, _ = fold_all(values)
    assert state["status"] == values[-1]["status"]
    assert state["applied_count"] == 4
    assert state["stale_count"] == 0
    transitions = [(h["from"], h["to"]) for h in state["history"]]
    assert transitions == [
        (None, "INCOMING_REQUEST"),
        ("INCOMING_REQUEST", "ACCEPTED"),
        ("ACCEPTED", "ACCEPTED"),
        ("ACCEPTED", values[-1]["status"]),
    ]
    assert state["start"] == values[2]["start"]


def test_fold_is_idempotent_per_event_id() -> None:
    values = lifecycle_values()
    state, _ = fold_all(values[:2])
    for value in values[:2]:
        again = fold_appointment(state, value, NOW)
        assert again.state == state
        assert not again.changed
        assert list(again.emits) == []


def test_stale_update_recorded_not_applied() -> None:
    values = lifecycle_values(seed=2)
    state, _ = fold_all([values[0], values[2]])
    folded = fold_appointment(state, values[1], NOW)
    assert folded.changed
    assert folded.outcome == "stale"
    assert list(folded.emits) == []
    new = folded.state
    assert {k: new[k] for k in ("status", "event_id", "updated_at", "start")} == {
        k: state[k] for k in ("status", "event_id", "updated_at", "start")
    }
    assert (new["applied_count"], new["stale_count"]) == (2, 1)
    assert new["history"][-1] == {
        "event_id": values[1]["event_id"],
        "event_type": "ACCEPT",
        "from": state["status"],
        "to": "ACCEPTED",
        "updated_at": values[1]["updated_at"],
        "stale": True,
    }
    assert not fold_appointment(new, values[1], NOW).changed, "a redelivered stale event counts once"


def test_equal_updated_at_applies() -> None:
    values = lifecycle_values()
    state, _ = fold_all(values[:2])
    same_tick = {**values[2], "updated_at": values[1]["updated_at"]}
    assert fold_appointment(state, same_tick, NOW).state["event_id"] == values[2]["event_id"]


def test_applied_update_issues_crm_commands_only_with_a_customer() -> None:
    value = enriched(sample("reschedule-by-customer"))
    folded = fold_appointment(None, value, NOW)
    assert [e.value["op"] for e in folded.emits] == ["contact.upsert", "activity.upsert"]
    assert folded.state["customer_id"] == "cust-2f8a6c3e"
    assert list(fold_appointment(None, enriched(sample("accept-seed-example")), NOW).emits) == []


def test_tombstone_erases() -> None:
    state, _ = fold_all(lifecycle_values()[:1])
    assert fold_appointment(state, None, NOW).state is None
    assert not fold_appointment(None, None, NOW).changed


def test_history_is_bounded() -> None:
    value = lifecycle_values()[0]
    state: Any = None
    for i in range(HISTORY_LIMIT + 5):
        state = fold_appointment(state, {**value, "event_id": f"evt-{i}"}, NOW).state
    assert len(state["history"]) == HISTORY_LIMIT
    assert state["applied_count"] == HISTORY_LIMIT + 5
    assert state["history"][0]["event_id"] == "evt-5"


@pytest.mark.parametrize("seed", range(8))
def test_fold_matches_reference_under_reordering_and_redelivery(seed: int) -> None:
    rng = random.Random(seed)
    delivered = generate.shuffle_with_duplicates(rng, generate.life_cycles(rng, 12), duplicate_rate=0.3)
    states: dict[str, Any] = {}
    for doc in delivered:
        value = enriched(doc)
        states[value["appointment_id"]] = fold_appointment(
            states.get(value["appointment_id"]), value, NOW
        ).state
    reference = generate.reference_final_states(delivered)
    assert reference.keys() == states.keys()
    for appointment_id, expected in reference.items():
        got = states[appointment_id]
        assert {k: got[k] for k in expected} == expected, appointment_id
    assert any(r["stale_count"] for r in reference.values()), "the shuffle should produce stale updates"


# ---- generators ------------------------------------------------------------------------------------------


def test_generators_are_deterministic() -> None:
    assert generate.traffic(random.Random(9), 5) == generate.traffic(random.Random(9), 5)
    assert generate.traffic(random.Random(9), 5) != generate.traffic(random.Random(10), 5)


def test_life_cycle_shape() -> None:
    docs = generate.life_cycle(random.Random(4), "apt-x", generate.EPOCH)
    kinds = [(d["data"]["eventType"], d["data"]["appointment"]["status"]) for d in docs]
    assert kinds[:3] == [
        ("CREATE_REQUEST", "INCOMING_REQUEST"),
        ("ACCEPT", "ACCEPTED"),
        ("RESCHEDULE", "ACCEPTED"),
    ]
    assert kinds[3] in {("COMPLETE", "COMPLETED"), ("CANCEL", "CANCELLED")}
    stamps = [generate.updated_at_of(d) for d in docs]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert len({d["id"] for d in docs}) == 4
    assert docs[2]["data"]["previousAppointment"]["start"] == docs[1]["data"]["appointment"]["start"]


def test_life_cycles_are_in_upstream_order_and_valid() -> None:
    docs = generate.life_cycles(random.Random(6), 10)
    assert len(docs) == 40
    stamps = [generate.updated_at_of(d) for d in docs]
    assert stamps == sorted(stamps)
    for doc in docs:
        run(doc)


def test_shuffle_with_duplicates_keeps_every_event() -> None:
    docs = generate.life_cycles(random.Random(6), 10)
    out = generate.shuffle_with_duplicates(random.Random(1), docs, duplicate_rate=0.5)
    ids = [d["id"] for d in out]
    assert set(ids) == {d["id"] for d in docs}
    assert len(ids) > len(docs)
    assert ids != [d["id"] for d in docs][: len(ids)]


def test_invalid_documents_fail_as_labelled() -> None:
    invalid = generate.invalid_documents(random.Random(8))
    assert len({inv.label for inv in invalid}) == len(invalid)
    for inv in invalid:
        with pytest.raises(RecordError) as info:
            run(inv.document)
        assert (info.value.code, info.value.path) == (inv.code, inv.path), inv.label
    run(generate.base_document(random.Random(8)))


def test_traffic_records_behave_as_labelled() -> None:
    records = generate.traffic(random.Random(12), 40, invalid_rate=0.3, duplicate_rate=0.2)
    assert {r.code is None for r in records} == {True, False}
    assert any(r.label == "duplicate" for r in records)
    for r in records:
        raw = RawRecord(value=r.value, key=r.key)
        if r.code is None:
            assert RULES.process(raw, NOW).key == (r.key or b"").decode()
        else:
            with pytest.raises(RecordError) as info:
                RULES.process(raw, NOW)
            assert info.value.code == r.code, r.label
