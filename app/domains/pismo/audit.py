"""The audit record: what compliance keeps of every accepted migration result.

It is built once, in stage one, as a JSON-ready dict (what ``switchyard check pismo`` prints and what the
failures topic carries) laid out field for field like ``schemas/avro/migration_audit.avsc``, so the Avro datum
is the same dict with its two timestamps as datetimes.

The audit id is a uuid5 of the event id (sha256 of type + canonical body), not of the source offset: an event
redelivered by Kafka, or re-published by Pismo with the same content, is the same fact and gets the same audit
id, which is what lets a reader of the trail spot and drop a duplicate even outside the exactly-once path.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from typing import Any

from app.core.avro import AvroSchema, load_schema
from app.core.clock import iso
from app.core.errors import EnrichError
from app.core.records import RawRecord
from app.domains.pismo.models import CustomerOutgoing

EVENT_TYPE = "customer_outgoing"
AUDIT_SCHEMA = "migration_audit"
AUDIT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://pismo.io/events/migration/customer_outgoing-1.json")
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_EXACT_FLOAT = 2**53


@cache
def audit_schema() -> AvroSchema:
    return load_schema(AUDIT_SCHEMA)


def audit_id(event_id: str) -> str:
    return str(uuid.uuid5(AUDIT_NAMESPACE, event_id))


def event_time(raw: RawRecord) -> datetime | None:
    """The Kafka timestamp of the raw record: the event has no time of its own (``version_date`` dates the
    migration's definition, not the result)."""
    if raw.timestamp_ms is None:
        return None
    return datetime.fromtimestamp(raw.timestamp_ms / 1000, UTC)


def audit_record(
    event: CustomerOutgoing, body: Mapping[str, Any], event_id: str, raw: RawRecord, now: datetime
) -> dict[str, Any]:
    """The JSON-ready audit record of a validated event; ``body`` is the JSON it was validated from."""
    entity = None
    if event.entity is not None:
        entity = {"account_id": event.entity.account_id, "customer_id": event.entity.customer_id}
        for name, value in entity.items():
            _check_exact_long(name, body["entity"][name], value)
    when = event_time(raw)
    m = event.migration
    return {
        "audit_id": audit_id(event_id),
        "event_id": event_id,
        "event_type": EVENT_TYPE,
        "received_at": iso(now),
        "event_time": iso(when) if when is not None else None,
        "code": event.code,
        "message": event.message,
        "status": event.status,
        "operation": event.operation,
        "migration": {
            "id": m.id,
            "version_date": m.version_date,
            "account_id": m.account_id,
            "phase_id": m.phase_id,
        },
        "entity": entity,
        "source": {"topic": raw.topic, "partition": raw.partition, "offset": raw.offset},
        "original_sha256": hashlib.sha256(raw.value or b"").hexdigest(),
    }


def _check_exact_long(name: str, sent: Any, value: int) -> None:
    """Valid JSON Schema integers the audit cannot hold faithfully are refused, never rounded: beyond Avro's
    64-bit long, or sent in a form the JSON parser could only read as a float of 2**53 or more (its low digits
    may already be lost, so the audit could record another customer's id)."""
    if not _LONG_MIN <= value <= _LONG_MAX or (isinstance(sent, float) and abs(sent) >= _EXACT_FLOAT):
        raise EnrichError(
            "integer is valid JSON but cannot be audited exactly as a 64-bit Avro long",
            code="ENRICH-OUT-OF-RANGE",
            path=f"/entity/{name}",
        )


def avro_datum(audit: Mapping[str, Any]) -> dict[str, Any]:
    """The audit record as fastavro writes it: timestamps back to datetimes, everything else as is."""
    datum = dict(audit)
    datum["received_at"] = datetime.fromisoformat(audit["received_at"])
    if audit["event_time"] is not None:
        datum["event_time"] = datetime.fromisoformat(audit["event_time"])
    return datum
