"""What the appointments domain publishes, as a model: its JSON Schema is what ``switchyard asyncapi`` tells the
consumers of ``appointments.enriched``.

Stage one builds the value as a plain dict (:func:`~app.domains.appointments.enrich.enrich`), so nothing at run
time uses this class; ``tests/unit/test_asyncapi.py`` holds it to the code by validating every value the rules
emit for the seed samples and generated traffic against the published schema, fields it does not name included.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.domains.appointments.models import (
    ActorType,
    AppointmentStatus,
    Channel,
    EventType,
    MeetingType,
    StatusGroup,
)


class CustomerIds(BaseModel):
    """The customer as a CRM knows them; no name, phone or other personal field leaves the raw topic."""

    id: str | None
    external_id: str | None
    email: str | None


class EnrichedAppointment(BaseModel):
    """An allow-listed appointment after one webhook, with what downstream would otherwise recompute
    (``appointments.enriched``, key appointment id; it also feeds the ``appointments`` table)."""

    event_id: str = Field(description="the webhook's id: the dedupe key")
    event_type: EventType
    correlation_id: str | None
    appointment_id: str
    external_id: str | None
    status: AppointmentStatus
    status_group: StatusGroup
    previous_status: AppointmentStatus | None
    transition: str = Field(
        description="the previous status (NONE for the first), `->`, the new status: e.g. `NONE->ACCEPTED`"
    )
    meeting_type: MeetingType
    subject_id: str | None
    subject_name: str | None = Field(description="the subject's name in the participants' language if given")
    office_id: str | None
    listing_id: str | None
    start: datetime
    end: datetime
    previous_start: datetime | None
    duration_minutes: float
    reschedule_shift_seconds: int | None = Field(description="start minus the previous version's start")
    lead_time_seconds: int = Field(description="start minus the appointment's creation")
    created_at: datetime
    updated_at: datetime
    created_by_type: ActorType
    created_from: Channel
    updated_by_type: ActorType
    updated_from: Channel
    primary_employee_id: str | None
    employee_ids: list[str]
    customer: CustomerIds | None
