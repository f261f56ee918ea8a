"""``switchyard crm setup``: the portal gets the property group and every custom property the sink writes.

A HubSpot portal refuses a write to a property it does not have (``PROPERTY_DOESNT_EXIST``), and Switchyard writes
custom ones (``properties.CUSTOM_PROPERTIES``: ``vome_user_id`` and ``external_id`` unique, the ``vome_*`` ones,
``source_system``, the meetings' ``switchyard_*`` with ``switchyard_activity_id`` unique). Through the CRM v3
properties API, per object type: the ``switchyard`` group, created when missing; then each property, read by name
and created when missing. A property that exists is never changed: if its type, field type or uniqueness differ
from what the sink needs, it is reported as drift (and the command exits 1), because changing a live portal's
property is a decision for its owner, not for a deploy step. Running it again changes nothing.

:func:`outcome` is the pure decision for one property; :func:`setup_portal` is the HTTP shell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from app.core.clock import utc_now
from app.core.errors import PermanentSinkError
from app.sinks.crm.base import parse_retry_after, raise_for_answer
from app.sinks.crm.properties import (
    CUSTOM_PROPERTIES,
    OBJECT_TYPES,
    PROPERTY_GROUP,
    PROPERTY_GROUP_LABEL,
    PropertySpec,
)

Status = Literal["created", "exists", "drift"]
PROPERTIES = "/crm/v3/properties"
MAX_RATE_LIMITED = 10


@dataclass(frozen=True, slots=True)
class Step:
    """What setup did about one group or property."""

    object_type: str
    name: str
    status: Status
    detail: str = ""

    def __str__(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.status:<8}{self.object_type}.{self.name}{tail}"


def outcome(spec: PropertySpec, existing: dict[str, Any] | None) -> Step | None:
    """The step for a property found as ``existing`` (None: it must be created, no step yet)."""
    if existing is None:
        return None
    found = {
        "type": existing.get("type"),
        "fieldType": existing.get("fieldType"),
        "hasUniqueValue": bool(existing.get("hasUniqueValue", False)),  # absent: not unique
    }
    wanted = {"type": spec.type, "fieldType": spec.field_type, "hasUniqueValue": spec.unique}
    differs = [
        f"{key} is {found[key]!r}, the sink needs {want!r}"
        for key, want in wanted.items()
        if found[key] != want
    ]
    if differs:
        return Step(spec.object_type, spec.name, "drift", "; ".join(differs))
    return Step(spec.object_type, spec.name, "exists")


class _Portal:
    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One call; a 429 waits its Retry-After and tries again, other failures raise the sink's errors."""
        for _ in range(MAX_RATE_LIMITED):
            resp = await self.client.request(method, path, json=body, headers=self.headers)
            if resp.status_code == 429:
                await asyncio.sleep(parse_retry_after(resp.headers.get("retry-after"), utc_now()) or 1.0)
                continue
            if resp.status_code in (404, 409):
                return resp.status_code, None
            raise_for_answer(resp.status_code, resp.content, None, what=f"crm setup {method} {path}")
            return resp.status_code, resp.json() if resp.content else None
        raise PermanentSinkError(f"crm setup {method} {path}: still rate limited", code="CRM-429", status=429)


async def setup_portal(
    base_url: str,
    token: str,
    specs: Sequence[PropertySpec] = CUSTOM_PROPERTIES,
    *,
    client: httpx.AsyncClient | None = None,
) -> list[Step]:
    """Create the group and the properties the sink needs; one step per group and property."""
    own = client is None
    http = client or httpx.AsyncClient(base_url=base_url, timeout=30.0)
    portal = _Portal(http, token)
    steps: list[Step] = []
    try:
        for object_type in OBJECT_TYPES:
            status, _ = await portal.call("GET", f"{PROPERTIES}/{object_type}/groups/{PROPERTY_GROUP}")
            if status == 404:
                body = {"name": PROPERTY_GROUP, "label": PROPERTY_GROUP_LABEL, "displayOrder": -1}
                await portal.call("POST", f"{PROPERTIES}/{object_type}/groups", body)
                steps.append(Step(object_type, f"groups/{PROPERTY_GROUP}", "created"))
            else:
                steps.append(Step(object_type, f"groups/{PROPERTY_GROUP}", "exists"))
            for spec in (s for s in specs if s.object_type == object_type):
                status, found = await portal.call("GET", f"{PROPERTIES}/{object_type}/{spec.name}")
                step = outcome(spec, found if status == 200 else None)
                if step is None:
                    made, _ = await portal.call("POST", f"{PROPERTIES}/{object_type}", spec.create_body())
                    step = Step(object_type, spec.name, "exists" if made == 409 else "created")
                steps.append(step)
    finally:
        if own:
            await http.aclose()
    return steps
