"""The reference CRM: HubSpot's CRM v3 endpoints the adapter uses, with real state, limits and failures.

Not a mock of the client: it keeps contacts, meetings, associations and an erasure log in SQLite, applies the
semantics of ``model.py``, refuses what HubSpot refuses (unknown properties, more than 100 inputs, duplicate ids
in a batch -> 400; invalid values or taken unique values -> per-input errors in a 207 answer), enforces a
sliding-window rate limit per bearer token (429 + ``Retry-After``), answers a repeated ``Idempotency-Key`` with
its first answer, and can be told over HTTP to fail::

    POST /__admin/faults {"mode": "5xx"|"timeout"|"outage"|"slow"|"429", "count": n | "seconds": s, "delay": d}
    DELETE /__admin/faults          clear them
    GET /__admin/state              contacts (properties, archived), meetings (properties, contact ids), erasures
    GET /__admin/stats              calls per status, max calls that arrived in any window, 429s, replays
    POST /__admin/reset             empty state and stats (the portal's property definitions stay)

Like a portal, it has HubSpot's built-in properties only until ``switchyard crm setup`` creates the custom ones
through the CRM v3 properties API (``GET|POST /crm/v3/properties/{objectType}[/{name}]``, ``.../groups``); a
write to a property that does not exist refuses the call (400 ``PROPERTY_DOESNT_EXIST``).

Fault modes: ``5xx`` answers 503 without doing anything; ``outage`` does the same for every call during
``seconds``; ``429`` answers 429 with ``Retry-After: delay``; ``slow`` waits ``delay`` then works normally;
``timeout`` does the work, then waits ``delay`` (default 30 s) before answering, so the client gives up on a call
that did take effect, which is what idempotency keys are for. ``count`` faults apply to the next n API calls.

Erased contacts are deleted with their associations (their meetings stay, unlinked); the erasure log keeps the
HubSpot object id and time only.

Run it: ``python -m app.sinks.crm.reference --port 8089 --db crm.sqlite3 --limit 100 --window 60``; in tests,
``async with ReferenceCrm(limit=10, window=1.0) as crm: crm.url``. ``--limits 100/10s,100/60s`` (``windows=``)
keeps several rate-limit windows at once, as HubSpot does with its burst limit beside other budgets.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import sqlite3
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from app.core.clock import Clock, iso, utc_now
from app.sinks.crm.limiter import RateWindow, parse_windows
from app.sinks.crm.properties import (
    ACTIVITY_ID_PROPERTY,
    BUILTIN_PROPERTIES,
    CONTACT_TYPES,
    HUBSPOT_TYPES,
    MEETING_TYPES,
    OPTIONS,
    UNIQUE_CONTACT_PROPERTIES,
    property_errors,
)

MAX_INPUTS = 100
SETUP_TOKEN = "switchyard-setup"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MEETING_TO_CONTACT = 200
FAULT_MODES = frozenset({"5xx", "timeout", "outage", "slow", "429"})


def _json_path(name: str) -> str:
    """The JSON path of a contact property, spelled the same in the indexes and the look-ups (SQLite only uses
    an expression index for the very same expression, so the path is a literal, never a bound parameter)."""
    return f'$."{name}"'


_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, properties TEXT NOT NULL, archived INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meetings (
    id INTEGER PRIMARY KEY AUTOINCREMENT, activity_id TEXT NOT NULL UNIQUE, properties TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS associations (
    meeting_id INTEGER NOT NULL, contact_id INTEGER NOT NULL, type_id INTEGER NOT NULL,
    PRIMARY KEY (meeting_id, contact_id));
CREATE TABLE IF NOT EXISTS erasures (id INTEGER PRIMARY KEY AUTOINCREMENT, object_id INTEGER, erased_at TEXT);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS properties (
    object_type TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (object_type, name));
CREATE TABLE IF NOT EXISTS property_groups (
    object_type TEXT NOT NULL, name TEXT NOT NULL, definition TEXT NOT NULL, PRIMARY KEY (object_type, name));
""" + "".join(
    # HubSpot finds a contact by a unique property in constant time; without these indexes every look-up
    # scanned the table and the reference server, not the sink, set the benchmark's pace (O(n^2) per backlog).
    f"CREATE INDEX IF NOT EXISTS contacts_by_{name} ON contacts (json_extract(properties, '{_json_path(name)}'));\n"
    for name in sorted(UNIQUE_CONTACT_PROPERTIES)
)


class ApiError(Exception):
    """A whole-request refusal, rendered as HubSpot's error body."""

    def __init__(self, status: int, category: str, message: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {
            "status": "error",
            "category": category,
            "message": message,
            "correlationId": str(uuid.uuid4()),
            "errors": errors or [],
        }


def _item_error(
    category: str, message: str, context: dict[str, list[str]], errors: list[dict[str, str]]
) -> dict[str, Any]:
    """One entry of a 207 answer's ``errors``, in HubSpot's documented ``StandardError`` shape (every required
    field of the SDK's model: status, category, message, context, links, errors)."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "links": {},
        "errors": errors,
    }


def _object(
    oid: int, props: dict[str, str], archived: bool, created: str, updated: str, **extra: Any
) -> dict[str, Any]:
    """A CRM object as HubSpot answers it (``SimplePublicObject``): its id, timestamps, and the properties with
    the ones HubSpot always returns (``hs_object_id``, ``createdate``, ``lastmodifieddate``)."""
    out: dict[str, Any] = {
        "id": str(oid),
        "properties": {
            **props,
            "hs_object_id": str(oid),
            "createdate": created,
            "lastmodifieddate": updated,
        },
        "createdAt": created,
        "updatedAt": updated,
        "archived": archived,
        **extra,
    }
    if archived:
        out["archivedAt"] = updated
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ApiError(400, "VALIDATION_ERROR", "Property values must be strings, numbers or booleans")


def _batch_inputs(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON: expected an object with an inputs array")
    inputs: list[dict[str, Any]] = body["inputs"]
    if len(inputs) > MAX_INPUTS:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"Batch input exceeds the limit of {MAX_INPUTS} inputs",
            [{"code": "TOO_MANY_INPUTS", "message": f"at most {MAX_INPUTS}"}],
        )
    if not all(isinstance(i, dict) for i in inputs):
        raise ApiError(400, "VALIDATION_ERROR", "Every input must be an object")
    return inputs


def _properties(raw: Any, defined: frozenset[str]) -> dict[str, str]:
    """The input's properties as text; a name the portal does not define refuses the whole call, as HubSpot
    does (``PROPERTY_DOESNT_EXIST``)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ApiError(400, "VALIDATION_ERROR", "properties must be an object")
    unknown = sorted(set(raw) - defined)
    if unknown:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"Property values were not valid: {len(unknown)} propert{'y' if len(unknown) == 1 else 'ies'} "
            "do not exist",
            [
                {"code": "PROPERTY_DOESNT_EXIST", "in": name, "message": f'Property "{name}" does not exist'}
                for name in unknown
            ],
        )
    return {str(k): _text(v) for k, v in raw.items()}


BUILTIN_GROUPS = {"contacts": "contactinformation", "meetings": "meetinginformation"}
PROPERTY_TYPES = frozenset({"string", "number", "date", "datetime", "enumeration", "bool"})
FIELD_TYPES = frozenset(
    {"textarea", "text", "date", "file", "number", "select", "radio", "checkbox", "booleancheckbox"}
)


def _property_definition(
    name: str,
    label: str,
    hs_type: str,
    field_type: str,
    group: str,
    unique: bool,
    description: str,
    now: str,
    *,
    hubspot_defined: bool = False,
) -> dict[str, Any]:
    """A property as HubSpot's properties API answers it (the SDK's ``Property``)."""
    return {
        "name": name,
        "label": label,
        "type": hs_type,
        "fieldType": field_type,
        "groupName": group,
        "description": description,
        "options": [
            {"label": o, "value": o, "hidden": False, "displayOrder": i}
            for i, o in enumerate(sorted(OPTIONS.get(name, ())))
        ],
        "hasUniqueValue": unique,
        "hubspotDefined": hubspot_defined,
        "formField": False,
        "hidden": False,
        "calculated": False,
        "externalOptions": False,
        "archived": False,
        "createdAt": now,
        "updatedAt": now,
        "displayOrder": -1,
        "modificationMetadata": {
            "archivable": not hubspot_defined,
            "readOnlyDefinition": hubspot_defined,
            "readOnlyValue": False,
        },
    }


def _merge(current: dict[str, str], changes: dict[str, str]) -> dict[str, str]:
    out = dict(current)
    for name, text in changes.items():
        if text == "":
            out.pop(name, None)
        else:
            out[name] = text
    return out


def _invalid(errors: list[tuple[str, str]], trace: str) -> dict[str, Any]:
    return _item_error(
        "VALIDATION_ERROR",
        "Property values were not valid",
        {"objectWriteTraceId": [trace]},
        [
            {"code": code, "in": name, "message": f"Invalid value for property {name}"}
            for code, name in errors
        ],
    )


class CrmStore:
    """The CRM's state in SQLite; every public method is one API operation, applied in one transaction."""

    def __init__(self, path: str = ":memory:", clock: Clock = utc_now) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(_SCHEMA)
        self.clock = clock
        self._defined: dict[str, frozenset[str]] = {}
        self._seed_builtins()

    def close(self) -> None:
        self.db.close()

    def reset(self) -> None:
        with self.db:
            for table in ("contacts", "meetings", "associations", "erasures", "idempotency"):
                self.db.execute(f"DELETE FROM {table}")

    # --- the portal's property definitions (CRM v3 properties API) -----------------------------------------
    def _seed_builtins(self) -> None:
        """What every HubSpot portal has: the HubSpot-defined properties and their default groups."""
        now = iso(self.clock())
        with self.db:
            for object_type, group in BUILTIN_GROUPS.items():
                definition = {"name": group, "label": group, "displayOrder": 0, "archived": False}
                self.db.execute(
                    "INSERT OR IGNORE INTO property_groups VALUES (?, ?, ?)",
                    (object_type, group, orjson.dumps(definition)),
                )
                types = CONTACT_TYPES if object_type == "contacts" else MEETING_TYPES
                for name in sorted(BUILTIN_PROPERTIES[object_type]):
                    hs_type, field_type = HUBSPOT_TYPES[types.get(name, "string")]
                    definition = _property_definition(
                        name, name, hs_type, field_type, group, False, "", now, hubspot_defined=True
                    )
                    self.db.execute(
                        "INSERT OR IGNORE INTO properties VALUES (?, ?, ?)",
                        (object_type, name, orjson.dumps(definition)),
                    )

    def defined(self, object_type: str) -> frozenset[str]:
        """Names of the properties ``object_type`` has on this portal."""
        if object_type not in self._defined:
            rows = self.db.execute("SELECT name FROM properties WHERE object_type = ?", (object_type,))
            self._defined[object_type] = frozenset(str(r[0]) for r in rows)
        return self._defined[object_type]

    @staticmethod
    def _object_type(params: Mapping[str, str]) -> str:
        object_type = params.get("objectType", "")
        if object_type not in BUILTIN_GROUPS:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Unable to infer object type from: {object_type}")
        return object_type

    def get_property(self, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        object_type, name = self._object_type(params), params.get("propertyName", "")
        row = self.db.execute(
            "SELECT definition FROM properties WHERE object_type = ? AND name = ?", (object_type, name)
        ).fetchone()
        if row is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Property {name} does not exist")
        return 200, orjson.loads(row[0])

    def create_property(self, body: Any, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        object_type = self._object_type(params)
        if not isinstance(body, dict):
            raise ApiError(400, "VALIDATION_ERROR", "Invalid input JSON: expected a property")
        missing = [k for k in ("name", "label", "type", "fieldType", "groupName") if not body.get(k)]
        if missing:
            raise ApiError(400, "VALIDATION_ERROR", f"Property is missing {', '.join(missing)}")
        if body["type"] not in PROPERTY_TYPES or body["fieldType"] not in FIELD_TYPES:
            raise ApiError(400, "VALIDATION_ERROR", f"Invalid type {body['type']}/{body['fieldType']}")
        name, group = str(body["name"]), str(body["groupName"])
        if not self.db.execute(
            "SELECT 1 FROM property_groups WHERE object_type = ? AND name = ?", (object_type, group)
        ).fetchone():
            raise ApiError(400, "VALIDATION_ERROR", f"Property group {group} does not exist")
        if name in self.defined(object_type):
            raise ApiError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        definition = _property_definition(
            name,
            str(body["label"]),
            str(body["type"]),
            str(body["fieldType"]),
            group,
            bool(body.get("hasUniqueValue", False)),
            str(body.get("description") or ""),
            iso(self.clock()),
        )
        with self.db:
            self.db.execute(
                "INSERT INTO properties VALUES (?, ?, ?)", (object_type, name, orjson.dumps(definition))
            )
        self._defined.pop(object_type, None)
        return 201, definition

    def get_group(self, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        object_type, name = self._object_type(params), params.get("groupName", "")
        row = self.db.execute(
            "SELECT definition FROM property_groups WHERE object_type = ? AND name = ?", (object_type, name)
        ).fetchone()
        if row is None:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"Property group {name} does not exist")
        return 200, orjson.loads(row[0])

    def create_group(self, body: Any, params: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        object_type = self._object_type(params)
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            raise ApiError(400, "VALIDATION_ERROR", "A property group needs a name and a label")
        name = str(body["name"])
        definition = {
            "name": name,
            "label": str(body["label"]),
            "displayOrder": int(body.get("displayOrder", -1)),
            "archived": False,
        }
        with self.db:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO property_groups VALUES (?, ?, ?)",
                (object_type, name, orjson.dumps(definition)),
            )
        if cur.rowcount == 0:
            raise ApiError(409, "OBJECT_ALREADY_EXISTS", f"Property group '{name}' already exists.")
        return 201, definition

    # --- lookups ---------------------------------------------------------------------------------------------
    def _contact_by(self, id_property: str, value: str) -> tuple[int, dict[str, str], bool] | None:
        if id_property == "hs_object_id":
            row = self.db.execute(
                "SELECT id, properties, archived FROM contacts WHERE id = ?",
                (int(value) if value.isdigit() else -1,),
            ).fetchone()
        elif id_property in UNIQUE_CONTACT_PROPERTIES:
            row = self.db.execute(
                "SELECT id, properties, archived FROM contacts"
                f" WHERE json_extract(properties, '{_json_path(id_property)}') = ?",
                (value,),
            ).fetchone()
        else:
            raise ApiError(400, "VALIDATION_ERROR", f"{id_property} is not a unique property of contacts")
        return (int(row[0]), orjson.loads(row[1]), bool(row[2])) if row else None

    def _times(self, table: str, oid: int) -> tuple[str, str]:
        row = self.db.execute(f"SELECT created_at, updated_at FROM {table} WHERE id = ?", (oid,)).fetchone()
        return (str(row[0]), str(row[1])) if row else ("", "")

    def _meeting_by(self, id_property: str, value: str) -> tuple[int, dict[str, str]] | None:
        if id_property == "hs_object_id":
            row = self.db.execute(
                "SELECT id, properties FROM meetings WHERE id = ?", (int(value) if value.isdigit() else -1,)
            ).fetchone()
        else:
            row = self.db.execute(
                "SELECT id, properties FROM meetings WHERE activity_id = ?", (value,)
            ).fetchone()
        return (int(row[0]), orjson.loads(row[1])) if row else None

    def _id_property(self, raw: Any, allowed: frozenset[str], object_type: str = "contacts") -> str:
        prop = raw or "hs_object_id"
        if prop not in (allowed & self.defined(object_type)) | {"hs_object_id"}:
            raise ApiError(
                400, "VALIDATION_ERROR", f"idProperty {prop} is not a unique property of this object"
            )
        return str(prop)

    @staticmethod
    def _unique_ids(inputs: list[dict[str, Any]], what: str = "id") -> list[str]:
        ids = [str(i.get(what) or "") for i in inputs]
        if any(not i for i in ids):
            raise ApiError(400, "VALIDATION_ERROR", "Every input needs an id")
        if len(set(ids)) != len(ids):
            raise ApiError(
                400,
                "VALIDATION_ERROR",
                "Duplicate IDs found in batch input",
                [{"code": "DUPLICATE_ID", "message": "an id appears more than once"}],
            )
        return ids

    # --- contacts --------------------------------------------------------------------------------------------
    def upsert_contacts(self, body: Any) -> tuple[int, dict[str, Any]]:
        inputs = _batch_inputs(body)
        parsed = []
        for i in inputs:
            id_property = self._id_property(i.get("idProperty"), UNIQUE_CONTACT_PROPERTIES)
            if id_property == "hs_object_id":
                raise ApiError(400, "VALIDATION_ERROR", "upsert needs a unique idProperty")
            parsed.append(
                (
                    id_property,
                    str(i.get("id") or ""),
                    _properties(i.get("properties"), self.defined("contacts")),
                    str(i.get("objectWriteTraceId") or ""),
                )
            )
        self._unique_ids([{"id": f"{p}\x00{v}"} for p, v, _, _ in parsed])
        started = iso(self.clock())
        results, errors = [], []
        with self.db:
            for id_property, value, changes, trace in parsed:
                bad = property_errors(CONTACT_TYPES, changes)
                if bad:
                    errors.append(_invalid(bad, trace))
                    continue
                found = self._contact_by(id_property, value)
                own = found[0] if found else None
                taken = [
                    name
                    for name in sorted(UNIQUE_CONTACT_PROPERTIES & changes.keys())
                    if changes[name]
                    and (holder := self._contact_by(name, changes[name]))
                    and holder[0] != own
                ]
                if taken:
                    errors.append(
                        _item_error(
                            "CONFLICT",
                            "A contact with this unique value already exists",
                            {"objectWriteTraceId": [trace]},
                            [
                                {"code": "CONFLICT", "in": name, "message": "value already taken"}
                                for name in taken
                            ],
                        )
                    )
                    continue
                now = iso(self.clock())
                if found is None:
                    props = _merge({id_property: value}, changes)
                    cur = self.db.execute(
                        "INSERT INTO contacts (properties, archived, created_at, updated_at) VALUES (?, 0, ?, ?)",
                        (orjson.dumps(props), now, now),
                    )
                    cid, created = int(cur.lastrowid or 0), True
                else:
                    cid, props, created = found[0], _merge(found[1], changes), False
                    self.db.execute(
                        "UPDATE contacts SET properties = ?, archived = 0, updated_at = ? WHERE id = ?",
                        (orjson.dumps(props), now, cid),
                    )
                results.append(
                    _object(
                        cid,
                        props,
                        False,
                        self._times("contacts", cid)[0],
                        now,
                        new=created,
                        objectWriteTraceId=trace,
                    )
                )
        return self._batch_answer(results, errors, started)

    def _batch_answer(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str
    ) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": started,
            "completedAt": iso(self.clock()),
        }
        if errors:
            body["errors"] = errors
            body["numErrors"] = len(errors)
            return 207, body
        return 200, body

    def read(self, body: Any, kind: str, archived: bool = False) -> tuple[int, dict[str, Any]]:
        """``batch/read``: HubSpot answers the objects in the requested state only, live ones unless
        ``archived=true`` (then archived ones only); the others are "not found". Meetings are deleted, never
        archived, here."""
        inputs = _batch_inputs(body)
        allowed = UNIQUE_CONTACT_PROPERTIES if kind == "contacts" else frozenset({ACTIVITY_ID_PROPERTY})
        id_property = self._id_property(body.get("idProperty"), allowed, kind)
        ids = [str(i.get("id") or "") for i in inputs]
        started = iso(self.clock())
        results, missing = [], []
        for value in ids:
            if kind == "contacts":
                found = self._contact_by(id_property, value)
                if found and found[2] == archived:
                    results.append(_object(found[0], found[1], found[2], *self._times("contacts", found[0])))
                    continue
            else:
                meeting = self._meeting_by(id_property, value)
                if meeting and not archived:
                    results.append(
                        _object(meeting[0], meeting[1], False, *self._times("meetings", meeting[0]))
                    )
                    continue
            missing.append(value)
        errors = (
            [
                _item_error(
                    "OBJECT_NOT_FOUND",
                    "Could not get some objects, they may be deleted or not exist.",
                    {"ids": missing},
                    [],
                )
            ]
            if missing
            else []
        )
        return self._batch_answer(results, errors, started)

    def archive_contacts(self, body: Any) -> tuple[int, dict[str, Any]]:
        ids = self._unique_ids(_batch_inputs(body))
        with self.db:
            for value in ids:
                if value.isdigit():
                    self.db.execute(
                        "UPDATE contacts SET archived = 1, updated_at = ? WHERE id = ?",
                        (iso(self.clock()), int(value)),
                    )
        return 204, {}

    def gdpr_delete(self, body: Any) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict) or not body.get("objectId"):
            raise ApiError(400, "VALIDATION_ERROR", "objectId must not be empty")
        id_property = self._id_property(body.get("idProperty"), UNIQUE_CONTACT_PROPERTIES)
        found = self._contact_by(id_property, str(body["objectId"]))
        if found is not None:
            cid = found[0]
            with self.db:
                self.db.execute("DELETE FROM associations WHERE contact_id = ?", (cid,))
                self.db.execute("DELETE FROM contacts WHERE id = ?", (cid,))
                self.db.execute(
                    "INSERT INTO erasures (object_id, erased_at) VALUES (?, ?)", (cid, iso(self.clock()))
                )
        return 204, {}

    # --- meetings --------------------------------------------------------------------------------------------
    def upsert_meetings(self, body: Any) -> tuple[int, dict[str, Any]]:
        inputs = _batch_inputs(body)
        for i in inputs:
            if i.get("idProperty") != ACTIVITY_ID_PROPERTY or ACTIVITY_ID_PROPERTY not in self.defined(
                "meetings"
            ):
                raise ApiError(400, "VALIDATION_ERROR", f"meetings are upserted by {ACTIVITY_ID_PROPERTY}")
        ids = self._unique_ids(inputs)
        started = iso(self.clock())
        results, errors = [], []
        with self.db:
            for value, i in zip(ids, inputs, strict=True):
                changes = _properties(i.get("properties"), self.defined("meetings"))
                trace = str(i.get("objectWriteTraceId") or "")
                bad = property_errors(MEETING_TYPES, changes)
                if bad:
                    errors.append(_invalid(bad, trace))
                    continue
                now = iso(self.clock())
                found = self._meeting_by(ACTIVITY_ID_PROPERTY, value)
                if found is None:
                    props = _merge({ACTIVITY_ID_PROPERTY: value}, changes)
                    cur = self.db.execute(
                        "INSERT INTO meetings (activity_id, properties, created_at, updated_at) VALUES (?, ?, ?, ?)",
                        (value, orjson.dumps(props), now, now),
                    )
                    mid, created = int(cur.lastrowid or 0), True
                else:
                    mid, props, created = found[0], _merge(found[1], changes), False
                    self.db.execute(
                        "UPDATE meetings SET properties = ?, updated_at = ? WHERE id = ?",
                        (orjson.dumps(props), now, mid),
                    )
                results.append(
                    _object(
                        mid,
                        props,
                        False,
                        self._times("meetings", mid)[0],
                        now,
                        new=created,
                        objectWriteTraceId=trace,
                    )
                )
        return self._batch_answer(results, errors, started)

    def _delete_meeting(self, mid: int) -> None:
        self.db.execute("DELETE FROM associations WHERE meeting_id = ?", (mid,))
        self.db.execute("DELETE FROM meetings WHERE id = ?", (mid,))

    def archive_meetings(self, body: Any) -> tuple[int, dict[str, Any]]:
        ids = self._unique_ids(_batch_inputs(body))
        with self.db:
            for value in ids:
                if value.isdigit():
                    self._delete_meeting(int(value))
        return 204, {}

    def associate(self, body: Any) -> tuple[int, dict[str, Any]]:
        inputs = _batch_inputs(body)
        results, errors = [], []
        with self.db:
            for i in inputs:
                src = str((i.get("from") or {}).get("id") or "")
                dst = str((i.get("to") or {}).get("id") or "")
                meeting = self._meeting_by("hs_object_id", src)
                contact = self._contact_by("hs_object_id", dst)
                if meeting is None or contact is None or contact[2]:
                    # An archived object cannot be associated, as on HubSpot (it is in the recycle bin).
                    what, oid = ("meeting", src) if meeting is None else ("contact", dst)
                    errors.append(
                        _item_error(
                            "VALIDATION_ERROR",
                            f"No {what} with ID {oid} exists",
                            {"fromObjectId": [src], "toObjectId": [dst]},
                            [],
                        )
                    )
                    continue
                self.db.execute(
                    "INSERT OR IGNORE INTO associations VALUES (?, ?, ?)",
                    (meeting[0], contact[0], MEETING_TO_CONTACT),
                )
                results.append(
                    {
                        "from": {"id": src},
                        "to": {"id": dst},
                        "associationSpec": {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": MEETING_TO_CONTACT,
                        },
                    }
                )
        # HubSpot's API spec (and so the official SDK) knows one answer for this endpoint: 200, with the
        # failed inputs under ``errors``. A client tells them by the pairs missing from ``results``.
        _, answer = self._batch_answer(results, errors, iso(self.clock()))
        return 200, answer

    # --- idempotency and admin -------------------------------------------------------------------------------
    def remembered(self, key: str) -> tuple[str, int, bytes] | None:
        row = self.db.execute(
            "SELECT fingerprint, status, body FROM idempotency WHERE key = ?", (key,)
        ).fetchone()
        return (str(row[0]), int(row[1]), bytes(row[2])) if row else None

    def remember(self, key: str, fingerprint: str, status: int, body: bytes) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR IGNORE INTO idempotency VALUES (?, ?, ?, ?)", (key, fingerprint, status, body)
            )

    def state(self) -> dict[str, Any]:
        contacts = [
            {"id": str(r[0]), "properties": orjson.loads(r[1]), "archived": bool(r[2])}
            for r in self.db.execute("SELECT id, properties, archived FROM contacts ORDER BY id")
        ]
        links: dict[int, list[str]] = {}
        for mid, cid in self.db.execute(
            "SELECT meeting_id, contact_id FROM associations ORDER BY contact_id"
        ):
            links.setdefault(int(mid), []).append(str(cid))
        meetings = [
            {"id": str(r[0]), "properties": orjson.loads(r[1]), "contacts": links.get(int(r[0]), [])}
            for r in self.db.execute("SELECT id, properties FROM meetings ORDER BY id")
        ]
        erasures = [
            {"objectId": str(r[0]), "erasedAt": r[1]}
            for r in self.db.execute("SELECT object_id, erased_at FROM erasures ORDER BY id")
        ]
        return {"contacts": contacts, "meetings": meetings, "erasures": erasures}


@dataclass
class Fault:
    mode: str
    count: int | None
    until: float | None
    delay: float


def policy_name(window: RateWindow) -> str:
    """HubSpot's name of a rate-limit policy (the ``policyName`` of its 429 body) for a window."""
    return {1.0: "SECONDLY", 10.0: "TEN_SECONDLY_ROLLING", 86400.0: "DAILY"}.get(
        window.seconds, f"ROLLING_{window.seconds:g}_SECONDS"
    )


class Traffic:
    """Rate limits (one or several windows, all kept) and call statistics, per bearer token, on a monotonic
    clock."""

    def __init__(self, limit: int, window: float, windows: tuple[RateWindow, ...] = ()) -> None:
        self.windows = windows or (RateWindow(limit, window),)
        self.limit = self.windows[0].limit
        self.window = self.windows[0].seconds
        self.arrivals: dict[str, deque[float]] = {}
        self.admitted: dict[tuple[str, int], deque[float]] = {}
        self.max_in_window = 0
        self.by_status: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.rate_limited = 0
        self.replays = 0
        self.faults = 0

    def arrive(self, token: str, now: float) -> tuple[RateWindow, float] | None:
        """Record an arrival; when one of the token's budgets is spent (not admitted), that window and the
        seconds until it has room, else None."""
        seen = self.arrivals.setdefault(token, deque())
        seen.append(now)
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        self.max_in_window = max(self.max_in_window, len(seen))
        logs = []
        for i, w in enumerate(self.windows):
            ok = self.admitted.setdefault((token, i), deque())
            while ok and ok[0] <= now - w.seconds:
                ok.popleft()
            logs.append(ok)
        full = [
            (ok[0] + w.seconds - now, w)
            for w, ok in zip(self.windows, logs, strict=True)
            if len(ok) >= w.limit
        ]
        if full:
            self.rate_limited += 1
            wait, window = max(full, key=lambda item: item[0])
            return window, wait
        for ok in logs:
            ok.append(now)
        return None

    def headers(self, token: str, now: float) -> dict[str, str]:
        """HubSpot's ``X-HubSpot-RateLimit-*`` headers for the token's tightest window (least room left)."""
        rooms = []
        for i, w in enumerate(self.windows):
            ok = self.admitted.get((token, i), deque())
            used = sum(1 for t in ok if t > now - w.seconds)
            rooms.append((w.limit - used, w))
        remaining, window = min(rooms, key=lambda item: item[0])
        return {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(int(window.seconds * 1000)),
            "X-HubSpot-RateLimit-Max": str(window.limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, remaining)),
        }

    def stats(self) -> dict[str, Any]:
        return {
            "calls": sum(self.by_status.values()),
            "calls_by_status": dict(sorted(self.by_status.items())),
            "calls_by_endpoint": dict(sorted(self.by_endpoint.items())),
            "max_calls_in_window": self.max_in_window,
            "limit": self.limit,
            "window": self.window,
            "windows": [str(w) for w in self.windows],
            "rate_limited": self.rate_limited,
            "idempotent_replays": self.replays,
            "faults_injected": self.faults,
        }


Handler = Callable[[Any, Mapping[str, str]], tuple[int, dict[str, Any]]]
"""(parsed JSON body, query parameters) -> (status, answer body)."""


def rate_limit_body(window: RateWindow) -> dict[str, Any]:
    """HubSpot's documented 429 body: ``errorType: RATE_LIMIT`` and the policy that was hit."""
    return {
        "status": "error",
        "message": f"You have reached your {policy_name(window).lower()} limit.",
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy_name(window),
        "groupName": "publicapi",
    }


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Unknown paths and methods answer HubSpot's JSON error body, never aiohttp's ``text/plain``."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        body = {
            "status": "error",
            "message": f"{exc.reason}: {request.method} {request.path}",
            "correlationId": str(uuid.uuid4()),
            "category": "OBJECT_NOT_FOUND" if exc.status == 404 else "VALIDATION_ERROR",
        }
        return _json(exc.status, body)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


class ReferenceApp:
    """The aiohttp application around a :class:`CrmStore`."""

    def __init__(
        self,
        store: CrmStore,
        limit: int = 100,
        window: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        windows: tuple[RateWindow, ...] = (),
    ) -> None:
        self.store = store
        self.traffic = Traffic(limit, window, windows)
        self.faults: list[Fault] = []
        self.monotonic = monotonic
        self.sleep = sleep

        def archived(query: Mapping[str, str]) -> bool:
            return query.get("archived", "false").lower() == "true"

        routes: dict[str, Handler] = {
            "/crm/v3/objects/contacts/batch/upsert": lambda body, _: store.upsert_contacts(body),
            "/crm/v3/objects/contacts/batch/read": lambda body, q: store.read(body, "contacts", archived(q)),
            "/crm/v3/objects/contacts/batch/archive": lambda body, _: store.archive_contacts(body),
            "/crm/v3/objects/contacts/gdpr-delete": lambda body, _: store.gdpr_delete(body),
            "/crm/v3/objects/meetings/batch/upsert": lambda body, _: store.upsert_meetings(body),
            "/crm/v3/objects/meetings/batch/read": lambda body, q: store.read(body, "meetings", archived(q)),
            "/crm/v3/objects/meetings/batch/archive": lambda body, _: store.archive_meetings(body),
            "/crm/v4/associations/meetings/contacts/batch/associate/default": lambda body, _: store.associate(
                body
            ),
        }
        self.app = web.Application(middlewares=[json_errors])
        for path, handler in routes.items():
            self.app.router.add_post(path, self._api(path, handler))
        props = "/crm/v3/properties/{objectType}"
        self.app.router.add_get(
            f"{props}/groups/{{groupName}}",
            self._api(f"{props}/groups/{{groupName}}", lambda _, p: store.get_group(p)),
        )
        self.app.router.add_post(f"{props}/groups", self._api(f"{props}/groups", store.create_group))
        self.app.router.add_get(
            f"{props}/{{propertyName}}",
            self._api(f"{props}/{{propertyName}}", lambda _, p: store.get_property(p)),
        )
        self.app.router.add_post(props, self._api(props, store.create_property))
        self.app.router.add_post("/__admin/faults", self._add_fault)
        self.app.router.add_delete("/__admin/faults", self._clear_faults)
        self.app.router.add_get("/__admin/state", self._state)
        self.app.router.add_get("/__admin/stats", self._stats)
        self.app.router.add_post("/__admin/reset", self._reset)

    async def _state(self, _request: web.Request) -> web.Response:
        return _json(200, self.store.state())

    async def _stats(self, _request: web.Request) -> web.Response:
        return _json(200, self.traffic.stats())

    def inject(
        self, mode: str, *, count: int | None = None, seconds: float | None = None, delay: float | None = None
    ) -> None:
        """Queue a fault (what ``POST /__admin/faults`` does)."""
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}")
        if count is None and seconds is None:
            count = 1
        default = {"timeout": 30.0, "429": 1.0, "slow": 0.2}.get(mode, 0.0)
        until = self.monotonic() + seconds if seconds is not None else None
        self.faults.append(Fault(mode, count, until, default if delay is None else delay))

    async def _add_fault(self, request: web.Request) -> web.Response:
        try:
            spec = orjson.loads(await request.read())
            self.inject(
                str(spec.get("mode")),
                count=spec.get("count"),
                seconds=spec.get("seconds"),
                delay=spec.get("delay"),
            )
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
            return _json(400, {"status": "error", "message": str(exc)})
        return _json(200, {"faults": len(self.faults)})

    async def _clear_faults(self, _request: web.Request) -> web.Response:
        self.faults.clear()
        return _json(200, {"faults": 0})

    async def _reset(self, _request: web.Request) -> web.Response:
        self.store.reset()
        self.faults.clear()
        self.traffic = Traffic(self.traffic.limit, self.traffic.window, self.traffic.windows)
        return _json(200, {"reset": True})

    def _next_fault(self, now: float) -> Fault | None:
        self.faults = [
            f for f in self.faults if (f.count is None or f.count > 0) and (f.until is None or f.until > now)
        ]
        if not self.faults:
            return None
        fault = self.faults[0]
        if fault.count is not None:
            fault.count -= 1
        self.traffic.faults += 1
        return fault

    def _api(self, path: str, handler: Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def serve(request: web.Request) -> web.Response:
            response = await self._serve(path, handler, request)
            self.traffic.by_status[str(response.status)] += 1
            self.traffic.by_endpoint[path] += 1
            return response

        return serve

    async def _serve(self, path: str, handler: Handler, request: web.Request) -> web.Response:
        now = self.monotonic()
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.startswith("Bearer ") else ""
        who = token or request.remote or ""
        limited = self.traffic.arrive(who, now)
        limits = self.traffic.headers(who, now)
        if not token:
            return _json(
                401, ApiError(401, "INVALID_AUTHENTICATION", "Authentication credentials not found.").body
            )
        if limited is not None:
            window, wait = limited
            retry = {"Retry-After": str(max(1, math.ceil(wait)))}
            return _json(429, rate_limit_body(window), {**limits, **retry})
        fault = self._next_fault(now)
        if fault and fault.mode in ("5xx", "outage"):
            return _json(
                503, ApiError(503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable.").body
            )
        if fault and fault.mode == "429":
            retry = {"Retry-After": f"{fault.delay:g}"}
            return _json(429, rate_limit_body(self.traffic.windows[0]), {**limits, **retry})
        if fault and fault.mode == "slow":
            await self.sleep(fault.delay)
        raw = await request.read()
        query = {**request.query, **request.match_info}
        key = request.headers.get(IDEMPOTENCY_HEADER)
        status, answer = self._answer(path, handler, token, key, raw, query)
        if fault and fault.mode == "timeout":
            await self.sleep(fault.delay)
        return web.Response(
            status=status,
            body=answer or None,
            content_type="application/json" if answer else None,
            headers=limits,
        )

    def _answer(
        self, path: str, handler: Handler, token: str, key: str | None, raw: bytes, query: dict[str, str]
    ) -> tuple[int, bytes]:
        target = path + ("?" + "&".join(f"{k}={v}" for k, v in sorted(query.items())) if query else "")
        fingerprint = hashlib.sha256(target.encode() + b"\x00" + raw).hexdigest()
        scoped = f"{token}\x00{key}" if key else None
        if scoped:
            seen = self.store.remembered(scoped)
            if seen is not None:
                if seen[0] != fingerprint:
                    err = ApiError(
                        400,
                        "VALIDATION_ERROR",
                        "Idempotency-Key reused with a different request",
                        [{"code": "IDEMPOTENCY_KEY_REUSED", "message": "different body"}],
                    )
                    return 400, orjson.dumps(err.body)
                self.traffic.replays += 1
                return seen[1], seen[2]
        try:
            status, body = handler(orjson.loads(raw) if raw else None, query)
        except orjson.JSONDecodeError:
            status, body = 400, ApiError(400, "VALIDATION_ERROR", "Invalid input JSON").body
        except ApiError as exc:
            status, body = exc.status, exc.body
        encoded = b"" if status == 204 else orjson.dumps(body)
        if scoped and status < 500:
            self.store.remember(scoped, fingerprint, status, encoded)
        return status, encoded


class ReferenceCrm:
    """The reference CRM on a free loopback port, for tests and the benchmark."""

    def __init__(
        self,
        *,
        limit: int = 100,
        window: float = 60.0,
        windows: tuple[RateWindow, ...] = (),
        db: str = ":memory:",
        host: str = "127.0.0.1",
        port: int = 0,
        setup: bool = True,
    ) -> None:
        """``setup``: run ``switchyard crm setup``'s code against the fresh portal on entry (with its own token,
        statistics cleared after), as a deployment does before its first worker; False leaves a bare portal."""
        self.setup = setup
        self.store = CrmStore(db)
        self.api = ReferenceApp(self.store, limit, window, windows=windows)
        self._host, self._port = host, port
        self._runner = web.AppRunner(self.api.app, handle_signals=False)
        self.url = ""

    async def __aenter__(self) -> ReferenceCrm:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        if self.setup:
            from app.sinks.crm.setup import setup_portal

            # before the test's clock starts: no limit for the setup, then the configured one, fresh
            traffic = self.api.traffic
            self.api.traffic = Traffic(1_000_000, 1.0)
            await setup_portal(self.url, SETUP_TOKEN)
            self.api.traffic = Traffic(traffic.limit, traffic.window, traffic.windows)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._runner.cleanup()
        self.store.close()

    def state(self) -> dict[str, Any]:
        return self.store.state()

    def stats(self) -> dict[str, Any]:
        return self.api.traffic.stats()

    def inject(
        self, mode: str, *, count: int | None = None, seconds: float | None = None, delay: float | None = None
    ) -> None:
        self.api.inject(mode, count=count, seconds=seconds, delay=delay)


def make_app(
    db: str = ":memory:", limit: int = 100, window: float = 60.0, windows: tuple[RateWindow, ...] = ()
) -> web.Application:
    return ReferenceApp(CrmStore(db), limit, window, windows=windows).app


def serve(
    host: str = "127.0.0.1",
    port: int = 8089,
    db: str = ":memory:",
    limit: int = 100,
    window: float = 60.0,
    limits: str = "",
) -> None:
    """Run the reference CRM until interrupted (``switchyard crm-reference``)."""
    if db != ":memory:":
        from pathlib import Path

        Path(db).parent.mkdir(parents=True, exist_ok=True)
    windows = parse_windows(limits) if limits.strip() else (RateWindow(limit, window),)
    ready = (
        f"reference CRM on http://{host}:{port} (limits {', '.join(map(str, windows))} per token, db {db})"
    )
    web.run_app(
        make_app(db, limit, window, windows),
        host=host,
        port=port,
        print=lambda _banner: print(ready, flush=True),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m app.sinks.crm.reference", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--db", default=":memory:", help="SQLite file of CRM state")
    parser.add_argument("--limit", type=int, default=100, help="calls allowed per window per token")
    parser.add_argument("--window", type=float, default=60.0, help="rate-limit window in seconds")
    parser.add_argument(
        "--limits", default="", help="several windows, e.g. 100/10s,100/60s (replaces the two above)"
    )
    args = parser.parse_args(argv)
    serve(args.host, args.port, args.db, args.limit, args.window, args.limits)


if __name__ == "__main__":
    main()
