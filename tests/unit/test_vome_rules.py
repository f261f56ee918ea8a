"""Vome stage one: process, enrichment, routing, CRM commands and the pure ingress helpers, with a fixed now."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.core.errors import EnrichError, RecordError, ValidationFailed
from app.core.records import EVENT_TYPE_HEADER, Emit, Processed, RawRecord, content_event_id
from app.domains.vome.crm import SOURCE
from app.domains.vome.enrich import approved_hours, onboarding
from app.domains.vome.generate import document, generate, person
from app.domains.vome.models import Booking, SequenceAssignment
from app.domains.vome.rules import RULES, TOPICS, TRIGGERS, entity_id_of, key_of, process, route
from app.domains.vome.state import FEED_TOPIC
from app.sinks.crm.commands import CrmCommand, command_id

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SAMPLES = {s.event_type: json.loads(s.value) for s in RULES.samples()}


def raw(trigger: str | None, body: Any) -> RawRecord:
    headers = ((EVENT_TYPE_HEADER, trigger.encode()),) if trigger is not None else ()
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    return RawRecord(value=value, headers=headers, topic="vome.raw", partition=0, offset=1)


def run(trigger: str, body: dict[str, Any], now: datetime = NOW) -> tuple[Processed, list[Emit]]:
    processed = process(raw(trigger, body), now)
    return processed, list(route(processed, now))


def commands(emits: list[Emit]) -> list[CrmCommand]:
    """The event's own CRM commands: stage one hands them to the volunteers fold on the feed."""
    return [CrmCommand.model_validate(c) for e in emits if e.topic == FEED_TOPIC for c in e.value["crm"]]


def ensured(emits: list[Emit]) -> CrmCommand | None:
    [feed] = [e.value for e in emits if e.topic == FEED_TOPIC]
    return None if feed["ensure"] is None else CrmCommand.model_validate(feed["ensure"])


# ---- triggers and process ---------------------------------------------------------------------------------
def test_thirteen_distinct_triggers_each_with_a_sample() -> None:
    assert len(TRIGGERS) == len(set(TRIGGERS)) == 13
    assert tuple(RULES.event_types) == TRIGGERS
    assert set(SAMPLES) == set(TRIGGERS)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_process_keys_by_user_and_ids_by_trigger_and_content(trigger: str) -> None:
    body = SAMPLES[trigger]
    processed = process(raw(trigger, body), NOW)
    assert processed.event_type == trigger
    assert processed.event_id == content_event_id(trigger, body)
    user = body["id"] if trigger.startswith("profile.") else (body.get("user") or body.get("user_info"))["id"]
    assert processed.key == processed.enriched["user_id"] == user
    assert processed.enriched["entity_id"] == body["id"]


def test_event_id_ignores_key_order_and_whitespace_but_not_trigger_or_content() -> None:
    body = SAMPLES["booking.updated"]
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=4).encode()
    assert (
        process(raw("booking.updated", reordered), NOW).event_id
        == process(raw("booking.updated", body), NOW).event_id
    )
    assert (
        process(raw("booking.created", body), NOW).event_id
        != process(raw("booking.updated", body), NOW).event_id
    )
    changed = {**body, "status": 3}
    assert (
        process(raw("booking.updated", changed), NOW).event_id
        != process(raw("booking.updated", body), NOW).event_id
    )


@pytest.mark.parametrize(
    "header", [None, "booking", "booking.exploded", "BOOKING.CREATED", " booking.created"]
)
def test_missing_or_unknown_trigger_is_dead_lettered_with_its_code(header: str | None) -> None:
    with pytest.raises(ValidationFailed) as info:
        process(raw(header, SAMPLES["booking.created"]), NOW)
    assert info.value.code == "VOME-UNKNOWN-TRIGGER"
    assert info.value.stage == "validate"
    if header:
        assert header.strip() not in info.value.message


def test_trigger_is_checked_before_the_body() -> None:
    with pytest.raises(RecordError) as info:
        process(raw("nope", b"not json"), NOW)
    assert info.value.code == "VOME-UNKNOWN-TRIGGER"


def test_each_family_is_validated_by_its_own_model() -> None:
    booking_body = SAMPLES["booking.created"]
    with pytest.raises(ValidationFailed) as info:
        process(raw("profile.updated", {"id": "u1", "profile_details": booking_body["user"]}), NOW)
    assert info.value.code == "SCHEMA-TYPE"
    assert info.value.path == "/profile_details/gender"
    with pytest.raises(ValidationFailed) as missing:
        process(raw("sequence_assignment.created", booking_body), NOW)
    assert (missing.value.code, missing.value.path) == ("SCHEMA-REQUIRED", "/user_info")


def test_unknown_fields_are_tolerated_and_never_forwarded() -> None:
    body = {**SAMPLES["profile.updated"], "favourite_colour": "teal-UNIQUE"}
    processed, emits = run("profile.updated", body)
    assert "favourite_colour" not in json.dumps(processed.enriched)
    assert "teal-UNIQUE" not in json.dumps([e.value for e in emits])


# ---- enrichment -------------------------------------------------------------------------------------------
def _booking(**changes: Any) -> Booking:
    return Booking.model_validate({**SAMPLES["booking.updated"], **changes})


def test_approved_hours_are_departure_minus_arrival() -> None:
    assert approved_hours(_booking()) == 3.25
    assert approved_hours(_booking(hours_approved_by=None)) is None
    assert approved_hours(_booking(hours_approved_by="")) is None
    assert approved_hours(_booking(departure_time=None)) is None
    offset = _booking(arrival_time="2025-03-15T10:00:00+01:00", departure_time="2025-03-15T09:30:00Z")
    assert approved_hours(offset) == 0.5


def test_departure_before_arrival_is_an_enrich_error_naming_the_field() -> None:
    with pytest.raises(EnrichError) as info:
        approved_hours(_booking(departure_time="2025-03-15T08:00:00Z"))
    assert (info.value.code, info.value.path, info.value.stage) == (
        "ENRICH-NEGATIVE-HOURS",
        "/departure_time",
        "enrich",
    )


def _steps(*statuses: tuple[str | None, ...]) -> SequenceAssignment:
    step_info = []
    for n, group in enumerate(statuses, start=1):
        details = [{"title": "t", "user_orientation": {"status": s}} for s in group]
        step_info.append({"step": n, "type": "orientation", "orientation_details": details})
    return SequenceAssignment.model_validate(
        {"id": "a1", "user_info": {"id": "u1"}, "sequence_info": {"id": "s1", "step_info": step_info}}
    )


def test_onboarding_counts_steps_whose_every_orientation_or_interview_is_done() -> None:
    assert onboarding(_steps(("completed",), (" Completed ", "DONE"), ("completed", "pending"), ())) == (2, 4)
    assert onboarding(_steps((None,), ("expired",))) == (0, 2)
    no_info = SequenceAssignment.model_validate({"id": "a1", "user_info": {"id": "u1"}})
    assert onboarding(no_info) == (0, 0)
    interview = SequenceAssignment.model_validate(SAMPLES["sequence_assignment.updated"])
    assert onboarding(interview) == (1, 3)


def test_enriched_record_is_the_projection_plus_derived_values() -> None:
    processed = process(raw("booking.updated", SAMPLES["booking.updated"]), NOW)
    e = processed.enriched
    assert (e["hours_approved"], e["hours"], e["family"]) == (True, 3.25, "booking")
    assert e["data"]["shift"]["shift_title"] == "Food bank sorting"
    assert e["data"]["user"] == {"id": e["user_id"]}
    assert "hours_approved_by" not in e["data"]
    form = process(raw("form_submission.created", SAMPLES["form_submission.created"]), NOW).enriched
    assert (form["questions_total"], form["questions_answered"]) == (3, 3)
    assert set(form["data"]) == {
        "id",
        "submission_status",
        "created_at",
        "arrival_source",
        "user",
        "form",
        "folder",
    }


# ---- route ------------------------------------------------------------------------------------------------
EXPECTED_OP = {
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


@pytest.mark.parametrize("trigger", [t for t in TRIGGERS if t != "profile.deleted"])
def test_route_sends_projection_feed_and_one_crm_command_keyed_by_user(trigger: str) -> None:
    processed, emits = run(trigger, SAMPLES[trigger])
    user = processed.key
    assert [e.topic for e in emits] == [TOPICS[processed.enriched["family"]], FEED_TOPIC]
    assert all(e.key == user for e in emits)
    assert emits[0].value == processed.enriched
    assert emits[1].value["entity_id"] == processed.enriched["entity_id"]
    [command] = commands(emits)
    assert command.op == EXPECTED_OP[trigger]
    assert command.contact_id == user
    assert command.source == "vome" and command.source_event_id == processed.event_id
    assert command.issued_at == NOW
    assert command.command_id == command_id(SOURCE, processed.event_id, command.op, user)


def test_profile_deletion_erases_everywhere_and_projects_nothing() -> None:
    processed, emits = run("profile.deleted", SAMPLES["profile.deleted"])
    user = processed.key
    [erase] = commands(emits)
    assert (erase.op, erase.properties, erase.contact_id) == ("contact.erase", {}, user)
    assert ensured(emits) is None
    tombstones = [e for e in emits if e.topic != FEED_TOPIC]
    assert {e.topic for e in tombstones} == set(TOPICS.values())
    assert all(e.value is None and e.key == user for e in tombstones)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_activity_like_events_carry_the_contact_they_ensure_with_identity_fields_only(trigger: str) -> None:
    processed, emits = run(trigger, SAMPLES[trigger])
    ensure = ensured(emits)
    if trigger.startswith("profile.") or trigger == "booking.deleted":
        assert ensure is None
        return
    assert ensure is not None
    assert (ensure.op, ensure.id_property, ensure.contact_id) == (
        "contact.upsert",
        "vome_user_id",
        processed.key,
    )
    assert ensure.properties == {
        "vome_user_id": processed.key,
        "firstname": "Jana",
        "lastname": "Nováková",
        "email": "jana.novakova@example.org",
        "phone": "+420 777 123 456",
        "source_system": "vome",
    }
    assert ensure.command_id == command_id(SOURCE, processed.event_id, "contact.ensure", str(processed.key))
    assert ensure.command_id not in {c.command_id for c in commands(emits)}
    # the identity goes to the CRM only: the published projection keeps the volunteer's id alone
    projection = json.dumps(emits[0].value)
    assert (
        "Nov\\u00e1kov\\u00e1" not in projection
        and "Nováková" not in projection
        and "jana." not in projection
    )


def test_an_email_the_crm_would_refuse_is_left_out_of_the_ensure() -> None:
    body = {
        **SAMPLES["booking.created"],
        "user": {**SAMPLES["booking.created"]["user"], "email": "not-an-address"},
    }
    ensure = ensured(run("booking.created", body)[1])
    assert (
        ensure is not None and "email" not in ensure.properties and ensure.properties["firstname"] == "Jana"
    )


def test_command_ids_are_stable_per_delivery_and_differ_between_deliveries() -> None:
    body = SAMPLES["profile.updated"]
    first = commands(run("profile.updated", body)[1])[0]
    again = commands(run("profile.updated", body, NOW + timedelta(hours=5))[1])[0]
    assert first.command_id == again.command_id and first.issued_at != again.issued_at
    other = commands(run("profile.created", body)[1])[0]
    assert other.command_id != first.command_id


def test_profile_commands_carry_contact_fields_only() -> None:
    created = commands(run("profile.created", SAMPLES["profile.created"])[1])[0]
    details = SAMPLES["profile.created"]["profile_details"]
    assert created.properties == {
        "vome_user_id": SAMPLES["profile.created"]["id"],
        "email": details["email"],
        "firstname": details["first_name"],
        "lastname": details["last_name"],
        "phone": details["phone_number"],
        "vome_status": "active",
        "source_system": "vome",
    }
    updated = commands(run("profile.updated", SAMPLES["profile.updated"])[1])[0]
    assert "vome_status" not in updated.properties
    assert updated.properties["phone"] == "+420 777 654 321"
    archived = commands(run("profile.archived", SAMPLES["profile.archived"])[1])[0]
    assert archived.properties == {"vome_status": "archived"}


def test_profile_nulls_do_not_clear_crm_fields() -> None:
    body = json.loads(json.dumps(SAMPLES["profile.updated"]))
    body["profile_details"]["phone_number"] = None
    assert "phone" not in commands(run("profile.updated", body)[1])[0].properties


def test_booking_becomes_an_activity_on_the_contact() -> None:
    body = SAMPLES["booking.updated"]
    [upsert] = commands(run("booking.updated", body)[1])
    assert upsert.activity_id == body["id"]
    assert upsert.properties == {
        "title": "Food bank sorting",
        "start": "2025-03-15T09:00:00Z",
        "end": "2025-03-15T12:00:00Z",
        "status": "COMPLETED",
        "hours_approved": 3.25,
        "kind": "volunteer_shift",
        "source_system": "vome",
    }
    [scheduled] = commands(run("booking.created", SAMPLES["booking.created"])[1])
    assert scheduled.properties["status"] == "SCHEDULED" and "hours_approved" not in scheduled.properties
    [delete] = commands(run("booking.deleted", SAMPLES["booking.deleted"])[1])
    assert (delete.op, delete.activity_id, delete.properties) == (
        "activity.delete",
        SAMPLES["booking.deleted"]["id"],
        {},
    )


def test_form_submission_sets_the_last_form_properties() -> None:
    body = SAMPLES["form_submission.updated"]
    [cmd] = commands(run("form_submission.updated", body)[1])
    assert cmd.properties == {
        "vome_user_id": body["user"]["id"],
        "vome_last_form_id": body["form"]["id"],
        "vome_last_form_status": "approved",
        "vome_last_form_submitted_at": "2025-03-10T18:23:00Z",
        "source_system": "vome",
    }
    [deleted] = commands(run("form_submission.deleted", SAMPLES["form_submission.deleted"])[1])
    assert deleted.properties["vome_last_form_status"] == "deleted"


def test_sequence_assignment_sets_onboarding_progress_and_deletion_clears_it() -> None:
    body = SAMPLES["sequence_assignment.updated"]
    [cmd] = commands(run("sequence_assignment.updated", body)[1])
    assert cmd.properties["vome_onboarding_steps_done"] == 1
    assert cmd.properties["vome_onboarding_steps_total"] == 3
    assert cmd.properties["vome_sequence_id"] == body["sequence_info"]["id"]
    [cleared] = commands(run("sequence_assignment.deleted", SAMPLES["sequence_assignment.deleted"])[1])
    assert cleared.properties["vome_onboarding_steps_done"] is None
    assert cleared.properties["vome_onboarding_steps_total"] is None
    assert cleared.properties["vome_sequence_id"] is None


# ---- ingress helpers --------------------------------------------------------------------------------------
def test_entity_id_of_names_the_raw_key() -> None:
    assert entity_id_of("booking.created", SAMPLES["booking.created"]) == SAMPLES["booking.created"]["id"]
    assert entity_id_of(None, {"id": "abc"}) == "abc"
    assert entity_id_of("booking.created", {}) is None
    assert entity_id_of("booking.created", {"id": 7}) is None
    assert entity_id_of("booking.created", {"id": ""}) is None


def test_key_of_reads_raw_bytes() -> None:
    assert key_of(json.dumps({"id": "b-1"}).encode(), "booking.created") == b"b-1"
    assert key_of(b"not json", "booking.created") is None
    assert key_of(b"[1]", None) is None


# ---- generators -------------------------------------------------------------------------------------------
def test_generate_is_deterministic_and_labels_every_record_truthfully() -> None:
    first = generate(random.Random(7), 300, invalid_share=0.2)
    assert first == generate(random.Random(7), 300, invalid_share=0.2)
    assert first != generate(random.Random(8), 300, invalid_share=0.2)
    invalid = [g for g in first if g.code is not None]
    assert 20 < len(invalid) < 100
    assert {g.trigger for g in first if g.code is None} == set(TRIGGERS)
    for g in first:
        if g.code is None:
            processed = process(g.raw(), NOW)
            assert g.key == processed.enriched["entity_id"].encode()
        else:
            with pytest.raises(RecordError) as info:
                process(g.raw(), NOW)
            assert info.value.code == g.code, g.label


def test_generated_people_recur_across_families() -> None:
    users = [process(g.raw(), NOW).key for g in generate(random.Random(3), 200, invalid_share=0.0)]
    assert len(set(users)) <= 10 < len(users)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_document_builds_a_valid_body_for_every_trigger(trigger: str) -> None:
    rng = random.Random(trigger)
    p = person(rng)
    processed = process(raw(trigger, document(rng, trigger, p)), NOW)
    assert processed.key == p.id


def test_event_time_only_where_the_payload_dates_the_event() -> None:
    def at(trigger: str) -> datetime | None:
        return process(raw(trigger, SAMPLES[trigger]), NOW).event_time

    assert at("booking.created") == datetime(2025, 3, 5, 10, 12, tzinfo=UTC)
    assert at("sequence_assignment.updated") == datetime(2025, 3, 20, 16, 30, tzinfo=UTC)
    assert at("profile.created") == datetime.fromisoformat(
        SAMPLES["profile.created"]["profile_details"]["created_at"]
    )
    assert (
        at("booking.updated") is None
        and at("profile.deleted") is None
        and at("form_submission.updated") is None
    )
