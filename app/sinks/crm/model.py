"""What the CRM must hold after the commands: each applied alone, in order. The yardstick for the planner, the
adapter and the reference CRM.

Chosen semantics (the HubSpot adapter and the reference CRM implement the same):

- ``contact.upsert`` finds the contact by its ``id_property`` value (archived ones included), creates it when
  missing, sets the properties (``None`` clears) and restores it if it was archived: a volunteer who comes back
  is the same contact, not a duplicate.
- ``contact.archive`` is an upsert of its properties, then the archived flag (HubSpot's recycle bin): the record
  and its activities stay, hidden, until a later upsert restores it.
- ``contact.erase`` (GDPR) removes the contact and its associations; erasing an unknown contact is not an error
  (HubSpot answers 204). Its meetings stay, unlinked: they hold allow-listed activity data only, and deleting
  them would make an erase interact with a meeting another contact's commands touch (a meeting may be linked to
  several contacts), which no per-contact order can keep.
- ``activity.upsert`` needs its contact to exist and not be archived; otherwise it is refused (404
  ``CONTACT_NOT_FOUND``, or 409 ``CONTACT_ARCHIVED`` with its own dead-letter code: HubSpot's ``batch/read``
  does not find archived contacts and nothing can be associated with them) and changes nothing, so a replay
  after the contact exists again can succeed. It creates or updates the meeting by its activity id and
  associates it with the contact.
- ``activity.delete`` removes the meeting; deleting an unknown one is not an error.
- A value the property's type refuses, or a unique property taken by another contact, refuses the command (400 /
  409) and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from app.sinks.crm.base import CONTACT_ARCHIVED, CONTACT_NOT_FOUND, ItemError
from app.sinks.crm.commands import CrmCommand
from app.sinks.crm.properties import (
    ACTIVITY_ID_PROPERTY,
    CONTACT_TYPES,
    MEETING_TYPES,
    UNIQUE_CONTACT_PROPERTIES,
    contact_properties,
    meeting_properties,
    property_errors,
)


@dataclass
class _Contact:
    properties: dict[str, str]
    archived: bool = False


@dataclass
class _Meeting:
    properties: dict[str, str]
    contacts: set[int] = field(default_factory=set)


def _invalid(errors: list[tuple[str, str]]) -> ItemError:
    return ItemError(
        400,
        "VALIDATION_ERROR",
        "Property values were not valid",
        tuple(f"{code}@{name}" for code, name in errors),
    )


def _apply(target: dict[str, str], changes: dict[str, str]) -> None:
    for name, text in changes.items():
        if text == "":
            target.pop(name, None)
        else:
            target[name] = text


class CrmModel:
    """An in-memory CRM with the semantics above, in command vocabulary."""

    def __init__(self) -> None:
        self.contacts: dict[int, _Contact] = {}
        self.meetings: dict[str, _Meeting] = {}
        self._next = 1

    def find(self, id_property: str, value: str) -> int | None:
        for key, contact in self.contacts.items():
            if contact.properties.get(id_property) == value:
                return key
        return None

    def apply(self, cmd: CrmCommand) -> ItemError | None:
        """Apply one command; the error it is refused with, or None."""
        if cmd.op in ("contact.upsert", "contact.archive"):
            return self._upsert_contact(cmd, archive=cmd.op == "contact.archive")
        if cmd.op == "contact.erase":
            key = self.find(cmd.id_property, cmd.contact_id)
            if key is not None:
                del self.contacts[key]
                for meeting in self.meetings.values():
                    meeting.contacts.discard(key)
            return None
        assert cmd.activity_id is not None
        if cmd.op == "activity.delete":
            self.meetings.pop(cmd.activity_id, None)
            return None
        return self._upsert_activity(cmd, cmd.activity_id)

    def _upsert_contact(self, cmd: CrmCommand, *, archive: bool) -> ItemError | None:
        changes = contact_properties(cmd.properties)
        errors = property_errors(CONTACT_TYPES, changes)
        if errors:
            return _invalid(errors)
        key = self.find(cmd.id_property, cmd.contact_id)
        for name in UNIQUE_CONTACT_PROPERTIES & changes.keys():
            holder = self.find(name, changes[name]) if changes[name] else None
            if holder is not None and holder != key:
                return ItemError(
                    409, "CONFLICT", "A contact with this unique value already exists", (f"CONFLICT@{name}",)
                )
        if key is None:
            key = self._next
            self._next += 1
            self.contacts[key] = _Contact({cmd.id_property: cmd.contact_id})
        contact = self.contacts[key]
        _apply(contact.properties, changes)
        contact.archived = archive
        return None

    def _upsert_activity(self, cmd: CrmCommand, activity_id: str) -> ItemError | None:
        changes = meeting_properties(cmd.properties)
        errors = property_errors(MEETING_TYPES, changes)
        if errors:
            return _invalid(errors)
        key = self.find(cmd.id_property, cmd.contact_id)
        if key is None:
            return CONTACT_NOT_FOUND
        if self.contacts[key].archived:
            return CONTACT_ARCHIVED
        meeting = self.meetings.setdefault(activity_id, _Meeting({ACTIVITY_ID_PROPERTY: activity_id}))
        _apply(meeting.properties, changes)
        meeting.contacts.add(key)
        return None

    def snapshot(self) -> dict[str, Any]:
        """The state in the normal form :func:`normalize_state` gives the reference CRM's dump."""
        return normalize_state(
            {
                "contacts": [
                    {"id": str(k), "properties": c.properties, "archived": c.archived}
                    for k, c in self.contacts.items()
                ],
                "meetings": [
                    {"id": aid, "properties": m.properties, "contacts": [str(k) for k in m.contacts]}
                    for aid, m in self.meetings.items()
                ],
            }
        )


def _sorted(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: orjson.dumps(item, option=orjson.OPT_SORT_KEYS))


def normalize_state(dump: dict[str, Any]) -> dict[str, Any]:
    """A CRM state without its internal ids: contacts named by their unique properties, sorted.

    ``dump`` is ``{"contacts": [{id, properties, archived}], "meetings": [{id, properties, contacts: [id]}]}``,
    the shape of the reference CRM's ``GET /__admin/state``.
    """
    names: dict[str, list[list[str]]] = {}
    contacts = []
    for c in dump["contacts"]:
        props = {k: v for k, v in c["properties"].items() if v != ""}
        names[str(c["id"])] = sorted([k, v] for k, v in props.items() if k in UNIQUE_CONTACT_PROPERTIES)
        contacts.append({"properties": props, "archived": bool(c["archived"])})
    meetings = [
        {
            "properties": {k: v for k, v in m["properties"].items() if v != ""},
            "contacts": sorted(names.get(str(cid), [["unknown", str(cid)]]) for cid in m["contacts"]),
        }
        for m in dump["meetings"]
    ]
    return {"contacts": _sorted(contacts), "meetings": _sorted(meetings)}


def expected_state(commands: list[CrmCommand]) -> tuple[dict[str, Any], dict[str, ItemError]]:
    """Final state and refused commands (by command id) of applying ``commands`` one at a time, in order."""
    model = CrmModel()
    refused: dict[str, ItemError] = {}
    for cmd in commands:
        err = model.apply(cmd)
        if err is not None:
            refused[cmd.command_id] = err
    return model.snapshot(), refused
