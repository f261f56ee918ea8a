"""Stage one and two of the appointments domain as pure functions; the runtime's generic agents call them.

``process``: webhook bytes -> :class:`AppointmentWebhook` -> enriched record, keyed by the appointment id,
event id = the envelope's ``id``. ``route``: the enriched record on ``appointments.enriched``, which also
feeds the ``appointments`` table (same key, so no repartition topic). CRM commands come from the table fold,
not from ``route``: only the fold knows whether an update is stale (:mod:`app.domains.appointments.state`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from app.core.codecs import decode_json_object
from app.core.records import DomainRules, Emit, Processed, RawRecord, TableRule, load_samples
from app.core.validation import validate
from app.domains.appointments.enrich import enrich
from app.domains.appointments.models import AppointmentWebhook
from app.domains.appointments.state import TABLE, fold_appointment

ENRICHED_TOPIC = "appointments.enriched"


def process(raw: RawRecord, now: datetime) -> Processed:
    """Decode, validate, enrich. The body names its own event type: no header is consulted."""
    event = validate(AppointmentWebhook, decode_json_object(raw.value))
    enriched = enrich(event)
    return Processed(
        event_id=event.id,
        event_type=event.data.eventType,
        payload=event,
        enriched=enriched,
        event_time=event.data.appointment.updatedAt,
        key=event.data.appointment.id,
    )


def route(processed: Processed, now: datetime) -> list[Emit]:
    return [Emit(ENRICHED_TOPIC, processed.key, processed.enriched)]


def appointment_id_of(doc: Any) -> str | None:
    """``data.appointment.id`` of a decoded body, or None: the Kafka key the webhook ingress should use."""
    data = doc.get("data") if isinstance(doc, dict) else None
    appointment = data.get("appointment") if isinstance(data, dict) else None
    found = appointment.get("id") if isinstance(appointment, dict) else None
    return found if isinstance(found, str) and found else None


def key_of(body: bytes, event_type: str | None) -> bytes | None:
    """The appointment id of a raw body, so ``switchyard produce`` keys as the ingress does."""
    try:
        found = appointment_id_of(orjson.loads(body))
    except orjson.JSONDecodeError:
        return None
    return found.encode() if found else None


RULES = DomainRules(
    name="appointments",
    process=process,
    route=route,
    tables=[TableRule(TABLE, ENRICHED_TOPIC, fold_appointment)],
    samples=lambda: load_samples("appointments"),
    key_of=key_of,
)
