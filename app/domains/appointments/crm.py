"""Appointments -> CRM commands: the customer as a contact, the appointment as an activity on that contact.

Built from the enriched record, not the webhook, so the table fold can issue them: it alone knows whether an
update is stale, and a stale update must not roll a CRM activity back to an older status or time.

The contact is named by email when the customer has one (the CRM deduplicates contacts by email), else by the
upstream external id, else by the upstream customer id (an external id from the CRM's point of view). An
appointment without a customer has no contact to attach an activity to, so it issues no command.

The seed allows e-mails of 320 characters, the CRM holds ids of 255 (``MAX_CRM_ID``). A limit of the CRM must
not cost the appointment (it is enriched, stored and published whatever its CRM fate), so a customer whose
e-mail is too long is named by the next id that fits, and the over-long e-mail is left out of the contact's
properties (the CRM's e-mail property is that same identifier). When no id of the customer fits, the commands
name the first one anyway and the CRM sink dead-letters them (``CRM-ID-TOO-LONG`` on ``crm.deadletter``); an
appointment id too long for an activity costs only the ``activity.upsert``.

Commands are built as every domain builds them (:func:`~app.sinks.crm.commands.crm_command`, one idempotency-key
rule); ``issued_at`` is the appointment's ``updatedAt``, the upstream's own clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.sinks.crm.commands import (
    MAX_CRM_ID,
    ActivityStatus,
    CrmCommand,
    IdProperty,
    PropertyValue,
    crm_command,
)

SOURCE = "appointments"
DEFAULT_TITLE = "Appointment"

ACTIVITY_STATUS: dict[str, ActivityStatus] = {
    "ACCEPTED": "SCHEDULED",
    "COMPLETED": "COMPLETED",
    "NO_SHOW": "NO_SHOW",
    "CANCELLED": "CANCELED",
    "INCOMING_REQUEST": "REQUESTED",
    "OUTGOING_INVITE": "REQUESTED",
    "ALTERNATIVE_DATE_REQUESTED": "REQUESTED",
}


def activity_status(status: str, event_type: str) -> ActivityStatus:
    """A CANCEL event cancels the activity whatever status it reports."""
    return "CANCELED" if event_type == "CANCEL" else ACTIVITY_STATUS[status]


#: The customer's fields that can name their contact, in order of preference, and the CRM property each is.
_NAMED_BY: tuple[tuple[str, IdProperty], ...] = (
    ("email", "email"),
    ("external_id", "external_id"),
    ("id", "external_id"),
)


def contact_of(customer: Mapping[str, Any] | None) -> tuple[str, IdProperty] | None:
    """(contact id, the CRM property it is matched on): the first of email, external id and customer id that the
    customer has and the CRM can hold, else the first the customer has; None when the customer has none."""
    if not customer:
        return None
    named = [(str(customer[key]), id_property) for key, id_property in _NAMED_BY if customer.get(key)]
    return next((n for n in named if len(n[0]) <= MAX_CRM_ID), named[0] if named else None)


def crm_commands(enriched: Mapping[str, Any]) -> list[CrmCommand]:
    """contact.upsert then activity.upsert, keyed by the contact id; nothing without a nameable customer."""
    contact = contact_of(enriched.get("customer"))
    if contact is None:
        return []
    contact_id, id_property = contact
    event_id = str(enriched["event_id"])
    issued_at = datetime.fromisoformat(enriched["updated_at"])
    customer = enriched["customer"]
    contact_properties: dict[str, PropertyValue] = {"source_system": SOURCE}
    if customer.get("email") and (id_property == "email" or len(customer["email"]) <= MAX_CRM_ID):
        contact_properties["email"] = customer["email"]
    external_id = customer.get("external_id") or (contact_id if id_property == "external_id" else None)
    if external_id:
        contact_properties["external_id"] = external_id
    activity: dict[str, PropertyValue] = {
        "title": enriched.get("subject_name") or DEFAULT_TITLE,
        "start": enriched["start"],
        "end": enriched["end"],
        "status": activity_status(enriched["status"], enriched["event_type"]),
        "meeting_type": enriched["meeting_type"],
        "kind": "appointment",
        "source_system": SOURCE,
    }
    upsert = crm_command(
        SOURCE,
        event_id,
        "contact.upsert",
        contact_id,
        issued_at,
        properties=contact_properties,
        id_property=id_property,
    )
    meeting = crm_command(
        SOURCE,
        event_id,
        "activity.upsert",
        contact_id,
        issued_at,
        properties=activity,
        id_property=id_property,
        activity_id=str(enriched["appointment_id"]),
    )
    return [upsert, meeting]
