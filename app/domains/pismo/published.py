"""What Pismo publishes as JSON, as models: their JSON Schemas are what ``switchyard asyncapi`` tells the
consumers of ``pismo.migration-failures`` and ``pismo.phase-results``.

The audit record is laid out field for field like ``schemas/avro/migration_audit.avsc`` (the Avro value of
``audit.migration``), here in its JSON form: timestamps as ISO-8601 text. Stage one builds both values as plain
dicts (:func:`~app.domains.pismo.audit.audit_record`, :func:`~app.domains.pismo.state.phase_result`), so nothing at
run time uses these classes; ``tests/unit/test_asyncapi.py`` holds them to the code by validating every value
the rules emit for the seed samples and generated traffic against the published schema.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from app.domains.pismo.models import Operation, Status


class AuditMigration(BaseModel):
    id: str
    version_date: str = Field(description="RFC 3339 date-time exactly as Pismo sent it")
    account_id: str
    phase_id: str | None


class AuditEntity(BaseModel):
    account_id: int
    customer_id: int


class RawSource(BaseModel):
    """Where the event was consumed from: the raw topic, partition and offset (-1 offline)."""

    topic: str
    partition: int
    offset: int


class AuditRecord(BaseModel):
    """One accepted Pismo customer_outgoing v1 result with where it came from: ``audit.migration``'s record in
    JSON; ``pismo.migration-failures`` carries those whose status is FAIL."""

    audit_id: UUID = Field(
        description="uuid5 of event_id: the same event from any offset has the same audit id"
    )
    event_id: str = Field(
        description="sha256 hex of the event type and the canonical JSON body (the dedupe key)"
    )
    event_type: Literal["customer_outgoing"]
    received_at: datetime = Field(description="when Switchyard processed the event")
    event_time: datetime | None = Field(description="Kafka timestamp of the raw record; null offline")
    code: str
    message: str
    status: Status
    operation: Operation | None
    migration: AuditMigration
    entity: AuditEntity | None
    source: RawSource
    original_sha256: str = Field(description="sha256 hex of the raw record's value bytes, untouched")


class PhaseResult(BaseModel):
    """One accepted result on ``pismo.phase-results`` (key: the phase id, escaped by
    ``app.domains.pismo.state.phase_key``; ``"~"`` for results without a phase), feeding the ``phases``
    table's per-phase counts; ``source`` makes the fold idempotent under redelivery."""

    event_id: str
    phase_id: str | None
    migration_id: str
    status: Status
    operation: Operation | Literal["NONE"] = Field(description="NONE when the result carries no operation")
    source: RawSource
