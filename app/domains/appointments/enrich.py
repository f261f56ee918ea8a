"""The enriched appointment: an allow-list of the webhook plus what downstream would otherwise recompute.

Only ids, statuses, times and the customer's CRM identifiers leave the raw topic. Names, phone numbers,
answers' free text, internal notes, messages for the customer, tokens and meeting URLs stay behind: consumers
of ``appointments.enriched`` and the CRM have no use for them, and each would be one more copy of personal
data.
The subject's display name is kept (it titles the CRM activity and names no person).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from app.core.clock import iso
from app.core.errors import EnrichError
from app.domains.appointments.models import (
    Appointment,
    AppointmentWebhook,
    Participant,
    Translation,
    status_group,
)

DEFAULT_LANGUAGES: tuple[str, ...] = ("en",)


def pick_translation(entries: Sequence[Translation] | None, languages: Iterable[str]) -> str | None:
    """The entry in the first of ``languages`` that has one, else the first entry: a title in some language
    beats no title."""
    if not entries:
        return None
    by_language = {e.language.lower(): e.value for e in entries}
    for language in languages:
        if language.lower() in by_language:
            return by_language[language.lower()]
    return entries[0].value


def _first(participants: Sequence[Participant], kind: str) -> Participant | None:
    """The PRIMARY participant of ``kind``, else the first one listed."""
    of_kind = [p for p in participants if p.type == kind]
    return next((p for p in of_kind if p.role == "PRIMARY"), of_kind[0] if of_kind else None)


def primary_employee_id(appointment: Appointment) -> str | None:
    found = _first(appointment.participants or [], "EMPLOYEE")
    return found.employee.id if found and found.employee else None


def customer_ids(appointment: Appointment) -> dict[str, str | None] | None:
    """The customer as the CRM knows them: upstream id, external id and email; None without a customer."""
    found = _first(appointment.participants or [], "CUSTOMER")
    if found is None or found.customer is None:
        return None
    c = found.customer
    return {"id": c.id, "external_id": c.externalId, "email": c.email}


def _seconds(later: datetime, earlier: datetime) -> int:
    return int((later - earlier).total_seconds())


def _languages(appointment: Appointment) -> list[str]:
    people = [p.customer for p in appointment.participants or [] if p.customer] + [
        p.employee for p in appointment.participants or [] if p.employee
    ]
    return [p.language for p in people if p.language] + list(DEFAULT_LANGUAGES)


def enrich(event: AppointmentWebhook) -> dict[str, Any]:
    """The JSON-ready enriched record; :class:`EnrichError` when the appointment ends before it starts."""
    a = event.data.appointment
    previous = event.data.previousAppointment
    if a.end < a.start:
        raise EnrichError(
            "appointment end is before its start: no duration",
            code="ENRICH-END-BEFORE-START",
            path="/data/appointment/end",
        )
    previous_status = previous.status if previous else None
    previous_start = previous.start if previous else None
    subject_translations = a.subject.translations if a.subject else None
    return {
        "event_id": event.id,
        "event_type": event.data.eventType,
        "correlation_id": event.correlationId,
        "appointment_id": a.id,
        "external_id": a.externalId,
        "status": a.status,
        "status_group": status_group(a.status),
        "previous_status": previous_status,
        "transition": f"{previous_status or 'NONE'}->{a.status}",
        "meeting_type": a.meetingType,
        "subject_id": a.subject.id if a.subject else None,
        "subject_name": pick_translation(
            subject_translations.name if subject_translations else None, _languages(a)
        ),
        "office_id": a.office.id if a.office else None,
        "listing_id": a.listing.id if a.listing else None,
        "start": iso(a.start),
        "end": iso(a.end),
        "previous_start": iso(previous_start) if previous_start else None,
        "duration_minutes": (a.end - a.start).total_seconds() / 60,
        "reschedule_shift_seconds": _seconds(a.start, previous_start) if previous_start else None,
        "lead_time_seconds": _seconds(a.start, a.createdAt),
        "created_at": iso(a.createdAt),
        "updated_at": iso(a.updatedAt),
        "created_by_type": a.createdByType,
        "created_from": a.createdFrom,
        "updated_by_type": a.updatedByType,
        "updated_from": a.updatedFrom,
        "primary_employee_id": primary_employee_id(a),
        "employee_ids": [p.employee.id for p in a.participants or [] if p.employee and p.employee.id],
        "customer": customer_ids(a),
    }
