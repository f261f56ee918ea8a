"""The CRM command: the one message format on ``crm.commands``.

Domains (Vome, appointments) emit commands; the CRM sink executes them. A command is CRM-neutral: it names a
contact by an external id and carries allow-listed properties only, so no personal field of a raw event can
reach a CRM unless it is named here. The Kafka key of a command is its ``contact_id``, so all commands of one
contact sit in one partition, in order.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.records import Emit

CommandOp = Literal[
    "contact.upsert", "contact.archive", "contact.erase", "activity.upsert", "activity.delete"
]
IdProperty = Literal["vome_user_id", "email", "external_id"]
ActivityStatus = Literal["SCHEDULED", "COMPLETED", "CANCELED", "NO_SHOW", "REQUESTED"]

#: Contact properties a command may set; the custom ones among them (``properties.CUSTOM_PROPERTIES``) are
#: created on the portal by ``switchyard crm setup``. No ``language``: HubSpot's built-in is ``hs_language``
#: (Preferred language, an enumeration of locale codes) and no domain has a language to write yet.
CONTACT_PROPERTIES: frozenset[str] = frozenset(
    {
        "vome_user_id",
        "external_id",
        "email",
        "firstname",
        "lastname",
        "phone",
        "city",
        "country",
        "lifecyclestage",
        "vome_status",
        "vome_last_form_id",
        "vome_last_form_status",
        "vome_last_form_submitted_at",
        "vome_onboarding_steps_done",
        "vome_onboarding_steps_total",
        "vome_sequence_id",
        "source_system",
    }
)

#: Activity (HubSpot meeting) properties a command may set.
ACTIVITY_PROPERTIES: frozenset[str] = frozenset(
    {
        "title",
        "start",
        "end",
        "status",
        "hours_approved",
        "kind",
        "location",
        "meeting_type",
        "source_system",
    }
)

PropertyValue = str | int | float | bool | None


#: The longest contact or activity id the CRM holds. A command may name a longer one (an e-mail may have 320
#: characters): the sink dead-letters that command alone (``CRM-ID-TOO-LONG``) instead of sending it.
MAX_CRM_ID = 255


def id_too_long(command: CrmCommand) -> str | None:
    """The field of ``command`` naming an id the CRM cannot hold, or None when the CRM can take it."""
    if len(command.contact_id) > MAX_CRM_ID:
        return "contact_id"
    if command.activity_id is not None and len(command.activity_id) > MAX_CRM_ID:
        return "activity_id"
    return None


class CrmCommand(BaseModel):
    """One idempotent instruction to the CRM.

    ``command_id`` is deterministic (same upstream delivery -> same id): the sink and the reference CRM use it as
    the idempotency key, so a redelivered command has no second effect. Commands are keyed by ``contact_id``, so
    one contact's commands reach the sink in the order they were produced.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(min_length=8, max_length=128)
    op: CommandOp
    contact_id: str = Field(min_length=1)
    id_property: IdProperty = "vome_user_id"
    activity_id: str | None = None
    properties: dict[str, PropertyValue] = Field(default_factory=dict)
    source: str
    source_event_id: str
    issued_at: datetime

    @model_validator(mode="after")
    def _allowed(self) -> CrmCommand:
        allowed = ACTIVITY_PROPERTIES if self.op.startswith("activity.") else CONTACT_PROPERTIES
        unknown = sorted(set(self.properties) - allowed)
        if unknown:
            raise ValueError(
                f"properties not in the {self.op.split('.')[0]} allow-list: {', '.join(unknown)}"
            )
        if self.op.startswith("activity.") and not self.activity_id:
            raise ValueError(f"{self.op} needs an activity_id")
        return self


#: The topic every domain's commands go to (the sink's input).
CRM_TOPIC = "crm.commands"


def command_id(source: str, event_id: str, op: str, contact_id: str) -> str:
    """The idempotency key, one rule for every domain: same source, event, operation and contact -> same id, so a
    redelivered event's commands have no second effect. The source is part of it because event ids are only
    unique within their upstream. ``op`` names the command's role in its event (Vome's ``contact.ensure`` beside
    the event's own ``contact.upsert``)."""
    return hashlib.sha256(f"{source}\x00{event_id}\x00{op}\x00{contact_id}".encode()).hexdigest()


def crm_command(
    source: str,
    event_id: str,
    op: CommandOp,
    contact_id: str,
    issued_at: datetime,
    *,
    properties: dict[str, PropertyValue] | None = None,
    id_property: IdProperty = "vome_user_id",
    activity_id: str | None = None,
    role: str | None = None,
) -> CrmCommand:
    """A command as every domain builds it, its id from :func:`command_id` (``role`` when it is not ``op``)."""
    return CrmCommand(
        command_id=command_id(source, event_id, role or op, contact_id),
        op=op,
        contact_id=contact_id,
        id_property=id_property,
        activity_id=activity_id,
        properties=properties or {},
        source=source,
        source_event_id=event_id,
        issued_at=issued_at,
    )


def as_emit(command: CrmCommand) -> Emit:
    """The record that carries ``command``: keyed by its contact, so one contact's commands stay in order."""
    return Emit(CRM_TOPIC, command.contact_id, command.model_dump(mode="json"))
