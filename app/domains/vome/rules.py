"""Stage one and two of Vome as pure functions; the runtime's generic agents call them.

``process``: the trigger (header ``switchyard.event-type``) picks the family model; the body is validated and
enriched into the family's allow-listed projection, keyed by the Vome user id. Vome deliveries carry no id of
their own (``id`` names the booking, profile, submission or assignment, the same across its updates), so the
event id is the sha256 of trigger and canonical body.

``route``: the projection on the family's topic and the volunteer-table feed value, which carries the event's CRM
commands and the contact it would ensure (the ``volunteers`` fold sends them, so that a volunteer's commands leave
in one order and none after an erasure: :mod:`app.domains.vome.state`). A ``profile.deleted`` erases instead:
a tombstone on every projection topic, and a feed value with ``contact.erase`` (whose fold replaces the table
state by an erasure marker and tombstones ``vome.volunteers``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from app.core.codecs import decode_json_object
from app.core.errors import ValidationFailed
from app.core.records import (
    DomainRules,
    Emit,
    Processed,
    RawRecord,
    TableRule,
    content_event_id,
    load_samples,
)
from app.core.validation import validate
from app.domains.vome.crm import commands_for, ensure_command
from app.domains.vome.enrich import MODELS, TRIGGERS, Family, enrich, event_time, family_of
from app.domains.vome.models import user_id
from app.domains.vome.privacy import identity
from app.domains.vome.state import FEED_TOPIC, VOLUNTEERS_TABLE, feed_value, fold_volunteer

__all__ = ["RULES", "TOPICS", "TRIGGERS", "entity_id_of", "key_of", "process", "route"]

RAW_TOPIC = "vome.raw"
TOPICS: Mapping[Family, str] = {
    "booking": "vome.bookings",
    "profile": "vome.profiles",
    "form_submission": "vome.forms",
    "sequence_assignment": "vome.sequences",
}
UNKNOWN_TRIGGER = "VOME-UNKNOWN-TRIGGER"


def trigger_of(raw: RawRecord) -> str:
    """The record's trigger, or the error that dead-letters it (the header's value is not echoed back)."""
    trigger = raw.event_type_header
    if trigger is None:
        raise ValidationFailed(
            "header switchyard.event-type is missing: no Vome trigger", code=UNKNOWN_TRIGGER
        )
    if trigger not in TRIGGERS:
        raise ValidationFailed(
            "header switchyard.event-type names no known Vome trigger", code=UNKNOWN_TRIGGER
        )
    return trigger


def process(raw: RawRecord, now: datetime) -> Processed:
    trigger = trigger_of(raw)
    body = decode_json_object(raw.value)
    payload = validate(MODELS[family_of(trigger)], body)
    event_id = content_event_id(trigger, body)
    return Processed(
        event_id=event_id,
        event_type=trigger,
        payload=payload,
        enriched=enrich(trigger, payload, event_id),
        event_time=event_time(trigger, payload),
        key=user_id(payload),
    )


def route(processed: Processed, now: datetime) -> list[Emit]:
    enriched = processed.enriched
    user = enriched["user_id"]
    family = family_of(processed.event_type)
    who = identity(family, processed.payload)
    feed = Emit(
        FEED_TOPIC,
        user,
        feed_value(processed, commands_for(enriched, now), ensure_command(enriched, who, now)),
    )
    if processed.event_type == "profile.deleted":
        return [*(Emit(topic, user, None) for topic in TOPICS.values()), feed]
    return [Emit(TOPICS[family], user, enriched), feed]


def entity_id_of(trigger: str | None, body: Mapping[str, Any]) -> str | None:
    """The Kafka key of a delivery on ``vome.raw``: the id of the entity it is about, or None when absent."""
    entity = body.get("id")
    return entity if isinstance(entity, str) and entity else None


def key_of(body: bytes, event_type: str | None) -> bytes | None:
    """:func:`entity_id_of` for ``switchyard produce``, which holds bytes; None for an unreadable body."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    entity = entity_id_of(event_type, doc) if isinstance(doc, dict) else None
    return entity.encode() if entity is not None else None


RULES = DomainRules(
    name="vome",
    process=process,
    route=route,
    tables=[TableRule(VOLUNTEERS_TABLE, FEED_TOPIC, fold_volunteer)],
    event_types=TRIGGERS,
    samples=lambda: load_samples("vome"),
    key_of=key_of,
)
