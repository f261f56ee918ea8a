"""Stage one of Phoenix: decode, validate, enrich and route one bus event.

Only ``VCSessionDoneEvent`` is handled. Any other ``eventName`` is a bus event this version does not know yet,
not a broken record: it is accepted under its own event type (so the runtime counts it by name) and routed,
bytes, key and headers untouched, to ``phoenix.unhandled``, from where a later version can replay it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.core.codecs import decode_json_object
from app.core.records import (
    DomainRules,
    Emit,
    Headers,
    Processed,
    RawRecord,
    TableRule,
    content_event_id,
    load_samples,
)
from app.core.validation import validate
from app.domains.phoenix.enrich import enrich
from app.domains.phoenix.models import SESSION_DONE, BusHeader, SessionDoneEnvelope
from app.domains.phoenix.state import (
    COACH_ACTIVITY_TABLE,
    TALENT_PROGRESS_TABLE,
    fold_coach_activity,
    fold_talent_progress,
)

RAW_TOPIC = "phoenix.raw"
ENRICHED_TOPIC = "phoenix.sessions.enriched"
BY_COACH_TOPIC = "phoenix.sessions.by-coach"
UNHANDLED_TOPIC = "phoenix.unhandled"
#: The event type of every event Switchyard does not handle. Its name stays in the record and in ``enriched``;
#: the type labels the accepted-events metric, and upstream's names must not decide how many series it has.
UNHANDLED_TYPE = "unhandled"


@dataclass(frozen=True, slots=True)
class UnhandledEvent:
    """The payload of an event Switchyard passes on untouched: exactly what arrived."""

    event_name: str
    value: bytes
    key: bytes | None
    headers: Headers


def _bus_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def process(raw: RawRecord, now: datetime) -> Processed:
    """Raw bus record -> enriched session, or an unhandled event; raises RecordError when it is neither."""
    doc = decode_json_object(raw.value)
    head = validate(BusHeader, doc)
    if head.eventName != SESSION_DONE:
        return _unhandled(raw, doc, head)
    envelope = validate(SessionDoneEnvelope, doc)
    session = enrich(envelope, now)
    return Processed(
        event_id=str(envelope.id),
        event_type=SESSION_DONE,
        payload=envelope,
        enriched=session.model_dump(mode="json"),
        event_time=envelope.createdAt,
        key=session.talentId,
    )


def _unhandled(raw: RawRecord, doc: dict[str, Any], head: BusHeader) -> Processed:
    # Unknown events still dedupe on the bus id; one without a usable id falls back to its content hash.
    bus_id = _bus_id(head.id)
    event_id = str(bus_id) if bus_id is not None else content_event_id(head.eventName, doc)
    assert raw.value is not None  # decode_json_object rejected empty values
    return Processed(
        event_id=event_id,
        event_type=UNHANDLED_TYPE,
        payload=UnhandledEvent(head.eventName, raw.value, raw.key, raw.headers),
        enriched={"eventName": head.eventName, "id": bus_id, "handled": False},
        key=raw.key.decode("utf-8", "replace") if raw.key is not None else None,
    )


def route(processed: Processed, now: datetime) -> list[Emit]:
    """Sessions go to the enriched topic (key talentId, which also feeds the talent-progress table) and to the
    coach feed (key coachId, so the coach-activity table is partitioned by coach); unknown events go on as
    they came."""
    payload = processed.payload
    if isinstance(payload, UnhandledEvent):
        return [Emit(UNHANDLED_TOPIC, payload.key, payload.value, payload.headers)]
    enriched = processed.enriched
    return [
        Emit(ENRICHED_TOPIC, enriched["talentId"], enriched),
        Emit(BY_COACH_TOPIC, enriched["coachId"], enriched),
    ]


def key_of(body: bytes, event_type: str | None) -> bytes | None:
    """The raw topic's key as Phoenix sets it: ``keyId``, else ``talentId``; None without either."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    for field in ("keyId", "talentId"):
        value = doc.get(field)
        if isinstance(value, str) and value:
            return value.encode()
    return None


RULES = DomainRules(
    name="phoenix",
    process=process,
    route=route,
    tables=(
        TableRule(TALENT_PROGRESS_TABLE, ENRICHED_TOPIC, fold_talent_progress),
        TableRule(COACH_ACTIVITY_TABLE, BY_COACH_TOPIC, fold_coach_activity),
    ),
    event_types=(),
    samples=lambda: load_samples("phoenix"),
    key_of=key_of,
)
