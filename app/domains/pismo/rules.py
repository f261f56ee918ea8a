"""Stage one and two of Pismo as pure functions; the runtime's generic agents call them.

``process``: bytes -> :class:`CustomerOutgoing` -> audit record (``Processed.enriched``), keyed by
``migration.id``. The event carries no id, so its event id is the sha256 of its type and canonical body.
``route``: the audit record as Avro single-object bytes on ``audit.migration``; FAIL results also as JSON on
``pismo.migration-failures``; every result on ``pismo.phase-results`` keyed by phase for the ``phases`` table.
"""

from __future__ import annotations

from datetime import datetime

import orjson

from app.core.avro import encode_single_object
from app.core.codecs import decode_json_object
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
from app.domains.pismo.audit import EVENT_TYPE, audit_record, audit_schema, avro_datum, event_time
from app.domains.pismo.models import CustomerOutgoing
from app.domains.pismo.state import PHASES_TABLE, fold_phase, phase_key, phase_result

AUDIT_TOPIC = "audit.migration"
FAILURES_TOPIC = "pismo.migration-failures"
PHASE_FEED_TOPIC = "pismo.phase-results"


def process(raw: RawRecord, now: datetime) -> Processed:
    """Decode, validate, build the audit record. The event-type header, if any, is not consulted:
    ``pismo.raw`` carries one event type only."""
    body = decode_json_object(raw.value)
    event = validate(CustomerOutgoing, body)
    event_id = content_event_id(EVENT_TYPE, body)
    return Processed(
        event_id=event_id,
        event_type=EVENT_TYPE,
        payload=event,
        enriched=audit_record(event, body, event_id, raw, now),
        event_time=event_time(raw),
        key=event.migration.id,
    )


def route(processed: Processed, now: datetime) -> list[Emit]:
    audit = processed.enriched
    emits = [Emit(AUDIT_TOPIC, processed.key, encode_single_object(audit_schema(), avro_datum(audit)))]
    if audit["status"] == "FAIL":
        emits.append(Emit(FAILURES_TOPIC, processed.key, audit))
    emits.append(Emit(PHASE_FEED_TOPIC, phase_key(audit["migration"]["phase_id"]), phase_result(audit)))
    return emits


def key_of(body: bytes, event_type: str | None) -> bytes | None:
    """``migration.id`` of a raw body, so ``switchyard produce`` keys as Pismo does; None if unreadable."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    migration = doc.get("migration") if isinstance(doc, dict) else None
    mid = migration.get("id") if isinstance(migration, dict) else None
    return mid.encode() if isinstance(mid, str) else None


RULES = DomainRules(
    name="pismo",
    process=process,
    route=route,
    tables=[TableRule(PHASES_TABLE, PHASE_FEED_TOPIC, fold_phase)],
    event_types=(EVENT_TYPE,),
    samples=lambda: load_samples("pismo"),
    key_of=key_of,
)
