"""Stage one of Lära: one raw record -> checked, validated, enriched, and routed to the feed of its table.

The record type travels in header ``switchyard.event-type`` (one of :data:`EVENT_TYPES`; anything else is
LARA-UNKNOWN-TYPE). Checks run in the order a fixer needs them: the seed's own rules (LARA-1000..1009, on ids
and on how the user is named), then the shapes (SCHEMA-*), then the rules across fields: a range ending before
it starts (LARA-1010) and, in a full status set, two entries with one id (LARA-1008). Ranges may overlap: no
rule of the seed forbids it (see :mod:`app.domains.lara.state` for what "active now" means then).

Routing: a member record that names a custom field (a valid ``customFieldAPIName`` and a non-blank
``customFieldValue``) goes to the identity table, keyed by ``customFieldAPIName:customFieldValue``, which links it
to the user or keeps it unresolved; one naming the user only goes straight to the timeline.

Event id: no Lära record carries an id of its event (``cycleId`` or ``entryId`` name the *thing*, which is sent
again whenever it changes), so every event id is the content hash of type and body. Keys: member records by
the member key (user id, or ``customFieldAPIName:customFieldValue``), progress by ``memberId``, cycles and
periods by ``cycleId``.
"""

from __future__ import annotations

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
from app.domains.lara.checks import UNKNOWN_TYPE, check, is_api_name, normalise_id
from app.domains.lara.enrich import enrich
from app.domains.lara.models import (
    CYCLE,
    EVENT_TYPES,
    MEMBER_TYPES,
    MODELS,
    PERIOD,
    USER_PROGRESS,
)
from app.domains.lara.state import (
    COMPLIANCE_FEED,
    COMPLIANCE_TABLE,
    CYCLE_TABLE,
    CYCLES_FEED,
    IDENTITIES_FEED,
    IDENTITY_TABLE,
    STATUSES_FEED,
    TIMELINE_TABLE,
    fold_compliance,
    fold_cycle,
    fold_identity,
    fold_timeline,
)

RAW_TOPIC = "lara.raw"


def event_type_of(raw: RawRecord) -> str:
    """The record type from its header, or LARA-UNKNOWN-TYPE (the header's value is not echoed back)."""
    event_type = raw.event_type_header
    if event_type is None:
        raise ValidationFailed("header switchyard.event-type is missing", code=UNKNOWN_TYPE)
    if event_type not in EVENT_TYPES:
        raise ValidationFailed("header switchyard.event-type names no Lära record type", code=UNKNOWN_TYPE)
    return event_type


def process(raw: RawRecord, now: datetime) -> Processed:
    """Raw Lära record -> Processed, or a RecordError naming the code, the path and the rule."""
    event_type = event_type_of(raw)
    doc = decode_json_object(raw.value)
    checked, member_key = check(event_type, doc)
    model = validate(MODELS[event_type], checked)
    body, key = enrich(event_type, model, member_key, now)
    event_id = content_event_id(event_type, doc)
    return Processed(
        event_id=event_id,
        event_type=event_type,
        payload=model,
        enriched={"type": event_type, "eventId": event_id, **body},
        key=key,
    )


def custom_field_key(enriched: dict[str, Any]) -> str | None:
    """``customFieldAPIName:customFieldValue`` of a member record that names a custom field, else None."""
    api_name, value = enriched.get("customFieldAPIName"), enriched.get("customFieldValue")
    if is_api_name(api_name) and isinstance(value, str) and value.strip():
        return f"{api_name}:{value.strip()}"
    return None


def route(processed: Processed, now: datetime) -> list[Emit]:
    """Member records naming a custom field feed the identity table (key custom field), the others the timeline
    (key member); cycles, periods and progress feed the cycle table (key cycle id), which forwards progress to
    the member's compliance with the cycle's periods attached."""
    enriched = processed.enriched
    if processed.event_type in MEMBER_TYPES:
        custom = custom_field_key(enriched)
        if custom is None:
            return [Emit(STATUSES_FEED, processed.key, enriched)]
        identity = {
            "eventId": enriched["eventId"],
            "customKey": custom,
            "userId": enriched["userId"],
            "record": enriched,
        }
        return [Emit(IDENTITIES_FEED, custom, identity)]
    return [Emit(CYCLES_FEED, enriched["cycleId"], enriched)]


def _member_key_of(doc: dict[str, Any]) -> str | None:
    user = normalise_id(doc.get("userId"))
    if user is None and isinstance(doc.get("statuses"), list):
        named = [normalise_id(s.get("userId")) for s in doc["statuses"] if isinstance(s, dict)]
        user = next((u for u in named if u is not None), None)
    if user is not None:
        return user
    api_name, value = doc.get("customFieldAPIName"), doc.get("customFieldValue")
    if is_api_name(api_name) and isinstance(value, str) and value.strip():
        return f"{api_name}:{value.strip()}"
    return None


def key_of(body: bytes, event_type: str | None) -> bytes | None:
    """The raw key Lära records are produced with (as :func:`process` keys them); None when the body does not
    say."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    key: str | None
    if event_type in (CYCLE, PERIOD):
        key = normalise_id(doc.get("cycleId"))
    elif event_type == USER_PROGRESS:
        key = normalise_id(doc.get("memberId"))
    elif event_type in MEMBER_TYPES:
        key = _member_key_of(doc)
    else:
        key = None
    return key.encode() if key is not None else None


RULES = DomainRules(
    name="lara",
    process=process,
    route=route,
    tables=(
        TableRule(IDENTITY_TABLE, IDENTITIES_FEED, fold_identity),
        TableRule(TIMELINE_TABLE, STATUSES_FEED, fold_timeline),
        TableRule(CYCLE_TABLE, CYCLES_FEED, fold_cycle),
        TableRule(COMPLIANCE_TABLE, COMPLIANCE_FEED, fold_compliance),
    ),
    event_types=EVENT_TYPES,
    samples=lambda: load_samples("lara"),
    key_of=key_of,
)
