"""Vome deliveries as CRM commands (:class:`~app.sinks.crm.commands.CrmCommand` on ``crm.commands``).

The mapping, per trigger:

- ``profile.created|updated`` -> ``contact.upsert`` (name, e-mail, phone; ``vome_status=active`` on creation);
  ``profile.archived`` -> ``contact.archive``; ``profile.deleted`` -> ``contact.erase``.
- ``booking.created|updated`` -> ``activity.upsert`` of the booking (shift title, start, end, COMPLETED once
  hours are approved else SCHEDULED, approved hours); ``booking.deleted`` -> ``activity.delete``.
- ``form_submission.*`` -> ``contact.upsert`` of ``vome_last_form_*`` (status ``deleted`` on deletion: the
  latest thing that happened to the contact's forms).
- ``sequence_assignment.created|updated`` -> ``contact.upsert`` of ``vome_onboarding_steps_done|_total`` and
  ``vome_sequence_id``; ``.deleted`` clears the three (null), as the contact has no assignment to show.

Every booking (not its deletion), submission and assignment event also yields an *ensure* command
(:func:`ensure_command`): ``contact.upsert`` by ``vome_user_id`` with the identity fields the delivery carries
(``CRM_IDENTITY``: first and last name, e-mail, phone; nothing else of the volunteer), so the activity or the
contact properties always have a contact to go to, even for a volunteer whose profile event came later or never.
Stage one puts it beside the event's own commands on the volunteers feed; the ``volunteers`` fold decides whether
it is sent (see :mod:`app.domains.vome.state`: not once the profile is known, never after an erasure). An e-mail
the CRM would refuse is left out of it, so a malformed address cannot keep the booking from its contact.

Properties that are null in a payload are left out of upserts (a webhook that omits a value does not clear the
CRM's), except where clearing is the meaning (the deleted assignment above). Every command is built from the
enriched record, which holds allow-listed data only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.sinks.crm.commands import CommandOp, CrmCommand, PropertyValue, crm_command
from app.sinks.crm.properties import CONTACT_TYPES, value_error

SOURCE = "vome"
ENSURE = "contact.ensure"
#: Vome identity field -> contact property.
IDENTITY_PROPERTIES: dict[str, str] = {
    "first_name": "firstname",
    "last_name": "lastname",
    "email": "email",
    "phone_number": "phone",
}
ACTIVITY_KIND = "volunteer_shift"


def _command(
    enriched: dict[str, Any],
    op: CommandOp,
    now: datetime,
    properties: dict[str, PropertyValue],
    activity_id: str | None = None,
) -> CrmCommand:
    return crm_command(
        SOURCE,
        enriched["event_id"],
        op,
        enriched["user_id"],
        now,
        properties=properties,
        activity_id=activity_id,
    )


def _present(props: dict[str, PropertyValue]) -> dict[str, PropertyValue]:
    return {k: v for k, v in props.items() if v is not None}


def ensure_command(enriched: dict[str, Any], identity: dict[str, Any], now: datetime) -> CrmCommand | None:
    """The contact an activity-like delivery needs, from the identity it carries; None for profile events (their
    own upsert is the contact) and for booking deletions (deleting a meeting needs no contact)."""
    trigger: str = enriched["trigger"]
    if trigger.startswith("profile.") or trigger == "booking.deleted":
        return None
    props: dict[str, PropertyValue] = {"vome_user_id": enriched["user_id"]}
    for field, name in IDENTITY_PROPERTIES.items():
        value = identity.get(field)
        valid = isinstance(value, str) and value.strip() and not value_error(name, CONTACT_TYPES[name], value)
        if valid:
            props[name] = value
    props["source_system"] = SOURCE
    return crm_command(
        SOURCE,
        enriched["event_id"],
        "contact.upsert",
        enriched["user_id"],
        now,
        properties=props,
        role=ENSURE,
    )


def commands_for(enriched: dict[str, Any], now: datetime) -> list[CrmCommand]:
    """The CRM commands one accepted delivery causes (each trigger causes exactly one)."""
    trigger: str = enriched["trigger"]
    data: dict[str, Any] = enriched["data"]
    if trigger == "profile.deleted":
        return [_command(enriched, "contact.erase", now, {})]
    if trigger == "profile.archived":
        return [_command(enriched, "contact.archive", now, {"vome_status": "archived"})]
    if trigger.startswith("profile."):
        details = data.get("profile_details") or {}
        props: dict[str, PropertyValue] = {
            "vome_user_id": enriched["user_id"],
            "email": details.get("email"),
            "firstname": details.get("first_name"),
            "lastname": details.get("last_name"),
            "phone": details.get("phone_number"),
            "vome_status": "active" if trigger == "profile.created" else None,
            "source_system": SOURCE,
        }
        return [_command(enriched, "contact.upsert", now, _present(props))]
    if trigger == "booking.deleted":
        return [_command(enriched, "activity.delete", now, {}, activity_id=enriched["entity_id"])]
    if trigger.startswith("booking."):
        shift = data.get("shift") or {}
        props = {
            "title": shift.get("shift_title"),
            "start": shift.get("shift_start_at"),
            "end": shift.get("shift_end_at"),
            "status": "COMPLETED" if enriched["hours_approved"] else "SCHEDULED",
            "hours_approved": enriched["hours"],
            "kind": ACTIVITY_KIND,
            "source_system": SOURCE,
        }
        return [
            _command(enriched, "activity.upsert", now, _present(props), activity_id=enriched["entity_id"])
        ]
    if trigger.startswith("form_submission."):
        props = {
            "vome_user_id": enriched["user_id"],
            "vome_last_form_id": (data.get("form") or {}).get("id"),
            "vome_last_form_status": "deleted"
            if trigger.endswith(".deleted")
            else data.get("submission_status"),
            "vome_last_form_submitted_at": data.get("created_at"),
            "source_system": SOURCE,
        }
        return [_command(enriched, "contact.upsert", now, _present(props))]
    if trigger == "sequence_assignment.deleted":
        cleared: dict[str, PropertyValue] = {
            "vome_user_id": enriched["user_id"],
            "vome_sequence_id": None,
            "vome_onboarding_steps_done": None,
            "vome_onboarding_steps_total": None,
            "source_system": SOURCE,
        }
        return [_command(enriched, "contact.upsert", now, cleared)]
    progress = enriched["onboarding"]
    props = {
        "vome_user_id": enriched["user_id"],
        "vome_sequence_id": (data.get("sequence_info") or {}).get("id"),
        "vome_onboarding_steps_done": progress["steps_done"],
        "vome_onboarding_steps_total": progress["steps_total"],
        "source_system": SOURCE,
    }
    return [_command(enriched, "contact.upsert", now, _present(props))]
