"""The CRM account's property definitions: what the reference CRM accepts and how activities map onto meetings.

HubSpot keeps every property value as text and validates it by the property's type; a value of ``""`` clears it.
Contacts use the command's own property names (they are the CRM's, see ``commands.py``). Activities become
HubSpot meetings: the command's neutral names map onto ``hs_meeting_*`` properties plus a few custom
``switchyard_*`` ones, so nothing the command says is lost where HubSpot's own vocabulary is narrower
(``REQUESTED`` has no meeting outcome: it is kept in ``switchyard_status`` and shown as ``SCHEDULED``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.sinks.crm.commands import CONTACT_PROPERTIES, PropertyValue

PropertyType = Literal["string", "number", "datetime", "enumeration", "email"]

#: Contact properties whose values identify one contact (usable as ``idProperty``).
UNIQUE_CONTACT_PROPERTIES: frozenset[str] = frozenset({"vome_user_id", "email", "external_id"})

ACTIVITY_ID_PROPERTY = "switchyard_activity_id"
MAX_TEXT = 65_536

_CONTACT_TYPES: dict[str, PropertyType] = {
    "email": "email",
    "lifecyclestage": "enumeration",
    "vome_last_form_submitted_at": "datetime",
    "vome_onboarding_steps_done": "number",
    "vome_onboarding_steps_total": "number",
}
CONTACT_TYPES: dict[str, PropertyType] = {
    name: _CONTACT_TYPES.get(name, "string") for name in CONTACT_PROPERTIES
}

MEETING_TYPES: dict[str, PropertyType] = {
    ACTIVITY_ID_PROPERTY: "string",
    "hs_timestamp": "datetime",
    "hs_meeting_title": "string",
    "hs_meeting_start_time": "datetime",
    "hs_meeting_end_time": "datetime",
    "hs_meeting_outcome": "enumeration",
    "hs_meeting_location": "string",
    "hs_activity_type": "string",
    "switchyard_status": "string",
    "switchyard_hours_approved": "number",
    "switchyard_kind": "string",
    "switchyard_source_system": "string",
}

OPTIONS: dict[str, frozenset[str]] = {
    "lifecyclestage": frozenset(
        {
            "subscriber",
            "lead",
            "marketingqualifiedlead",
            "salesqualifiedlead",
            "opportunity",
            "customer",
            "evangelist",
            "other",
        }
    ),
    "hs_meeting_outcome": frozenset({"SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"}),
}

#: Command activity property -> the meeting properties it sets (the first is where it reads back from).
MEETING_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("hs_meeting_title",),
    "start": ("hs_meeting_start_time", "hs_timestamp"),
    "end": ("hs_meeting_end_time",),
    "status": ("switchyard_status", "hs_meeting_outcome"),
    "hours_approved": ("switchyard_hours_approved",),
    "kind": ("switchyard_kind",),
    "location": ("hs_meeting_location",),
    "meeting_type": ("hs_activity_type",),
    "source_system": ("switchyard_source_system",),
}

_OUTCOME = {"REQUESTED": "SCHEDULED"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def as_text(value: PropertyValue) -> str:
    """A command value as the CRM stores it; ``None`` becomes ``""``, which clears the property."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def meeting_properties(props: Mapping[str, PropertyValue]) -> dict[str, str]:
    """A command's activity properties as meeting properties (text; ``""`` clears)."""
    out: dict[str, str] = {}
    for name, value in props.items():
        text = as_text(value)
        for target in MEETING_FIELDS[name]:
            out[target] = _OUTCOME.get(text, text) if target == "hs_meeting_outcome" else text
    return out


def contact_properties(props: Mapping[str, PropertyValue]) -> dict[str, str]:
    return {name: as_text(value) for name, value in props.items()}


def _is_datetime(text: str) -> bool:
    if text.isdigit():
        return True
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def value_error(name: str, ptype: PropertyType, text: str) -> str | None:
    """The HubSpot-style error code of one property value, or None when the CRM accepts it."""
    if text == "":
        return None
    if len(text) > MAX_TEXT:
        return "INVALID_LENGTH"
    if ptype == "email" and not _EMAIL.match(text):
        return "INVALID_EMAIL"
    if ptype == "number" and not _is_number(text):
        return "INVALID_NUMBER"
    if ptype == "datetime" and not _is_datetime(text):
        return "INVALID_DATETIME"
    if ptype == "enumeration" and text not in OPTIONS.get(name, frozenset()):
        return "INVALID_OPTION"
    return None


def property_errors(types: Mapping[str, PropertyType], props: Mapping[str, str]) -> list[tuple[str, str]]:
    """(code, property name) of every invalid value of ``props``; names ``types`` does not know are text (whether
    they exist at all is the caller's business)."""
    out: list[tuple[str, str]] = []
    for name, text in props.items():
        code = value_error(name, types.get(name, "string"), text)
        if code:
            out.append((code, name))
    return out


# --- the portal's side: which properties HubSpot has built in and which Switchyard must create ------------------
OBJECT_TYPES: tuple[str, ...] = ("contacts", "meetings")
PROPERTY_GROUP = "switchyard"
PROPERTY_GROUP_LABEL = "Switchyard"

#: Properties every HubSpot portal has (HubSpot-defined); ``crm setup`` never creates or changes them.
BUILTIN_PROPERTIES: dict[str, frozenset[str]] = {
    "contacts": frozenset(
        {"email", "firstname", "lastname", "phone", "city", "country", "lifecyclestage", "hs_language"}
    ),
    "meetings": frozenset(
        {
            "hs_timestamp",
            "hs_meeting_title",
            "hs_meeting_start_time",
            "hs_meeting_end_time",
            "hs_meeting_outcome",
            "hs_meeting_location",
            "hs_activity_type",
        }
    ),
}

#: HubSpot's (type, fieldType) of each of our value types.
HUBSPOT_TYPES: dict[PropertyType, tuple[str, str]] = {
    "string": ("string", "text"),
    "number": ("number", "number"),
    "datetime": ("datetime", "date"),
    "enumeration": ("enumeration", "select"),
    "email": ("string", "text"),
}


@dataclass(frozen=True, slots=True)
class PropertySpec:
    """A custom property as the CRM v3 properties API creates it (``PropertyCreate``)."""

    object_type: str
    name: str
    type: str
    field_type: str
    unique: bool = False

    @property
    def label(self) -> str:
        return self.name.replace("_", " ").capitalize()

    def create_body(self) -> dict[str, object]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "groupName": PROPERTY_GROUP,
            "hasUniqueValue": self.unique,
            "description": "Written by Switchyard",
            "formField": False,
        }


def _custom(
    object_type: str, types: Mapping[str, PropertyType], unique: frozenset[str]
) -> list[PropertySpec]:
    return [
        PropertySpec(object_type, name, *HUBSPOT_TYPES[ptype], unique=name in unique)
        for name, ptype in sorted(types.items())
        if name not in BUILTIN_PROPERTIES[object_type]
    ]


#: Every property the sink writes that a portal does not have until ``switchyard crm setup`` creates it.
CUSTOM_PROPERTIES: tuple[PropertySpec, ...] = (
    *_custom("contacts", CONTACT_TYPES, UNIQUE_CONTACT_PROPERTIES - {"email"}),
    *_custom("meetings", MEETING_TYPES, frozenset({ACTIVITY_ID_PROPERTY})),
)
