"""What of a Vome payload may leave ``vome.raw``: one allow-list per family, and nothing else.

Projections on ``vome.bookings|profiles|forms|sequences``, CRM commands and table feeds are built from
:func:`project` over these lists, never from the payload directly, so a field Vome adds tomorrow stays on the
raw topic until someone names it here. :data:`NEVER_LEAVES` names the data the brief forbids outright (medical
information, emergency contacts, dates of birth and the age derived from them, digital-consent files,
attachments, form answers); a unit test proves no allow-list reaches into it and that planted values in every
non-allow-listed field appear in no output and no error message.

:data:`CRM_IDENTITY` is the one exception, and it goes to the CRM only: the identity fields of the volunteer a
booking, submission or assignment carries (name, e-mail, phone; never the birth date, address, coordinates,
gender or time zone), so that such an event can ensure its volunteer's contact before writing to it. They are
projected by :func:`identity` into the CRM command that ensures the contact (carried on the internal volunteers
feed to the fold that sends it to ``crm.commands``), never into the published projections or table state.

A spec maps a field name to ``None`` (copy the value: scalars and lists of scalars only) or to a nested spec
(descend into an object, or into every object of a list).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from app.paths import SCHEMAS_DIR

Spec = Mapping[str, "Spec | None"]


def _leaves(*names: str) -> dict[str, Spec | None]:
    return dict.fromkeys(names)


_VOLUNTEER_REF: Spec = _leaves("id")

ALLOW: Mapping[str, Spec] = {
    "booking": {
        **_leaves("id", "status", "created_at", "arrival_time", "departure_time"),
        "shift": _leaves("id", "created_at", "shift_start_at", "shift_end_at", "spots", "shift_title"),
        "opportunity": {**_leaves("id", "status", "title"), "category": _leaves("id", "title")},
        "user": _VOLUNTEER_REF,
    },
    "profile": {
        **_leaves(
            "id", "logged_hours", "is_offline", "is_following", "most_recent_shift", "completed_shifts"
        ),
        "profile_details": _leaves(
            "first_name", "last_name", "full_name", "email", "phone_number", "created_at"
        ),
        "opportunities": {
            "id": None,
            "opportunity": {**_leaves("id", "title"), "category": _leaves("id", "title")},
        },
        "profile_tags": {"id": None, "tag": _leaves("id", "tag_title")},
    },
    "form_submission": {
        **_leaves("id", "submission_status", "created_at", "arrival_source"),
        "user": _VOLUNTEER_REF,
        "form": _leaves("id", "title"),
        "folder": _leaves("name"),
    },
    "sequence_assignment": {
        **_leaves("id", "status", "created_at", "updated_at"),
        "user_info": _VOLUNTEER_REF,
        "sequence_info": {
            **_leaves("id", "title", "sequence_status", "display_status"),
            "step_info": _leaves("step", "type"),
        },
    },
}

_IDENTITY: Spec = _leaves("id", "first_name", "last_name", "email", "phone_number")

#: What of the volunteer an activity-like delivery lets out *to the CRM only* (see the module doc).
CRM_IDENTITY: Mapping[str, Spec] = {
    "booking": {"user": _IDENTITY},
    "profile": {},
    "form_submission": {"user": _IDENTITY},
    "sequence_assignment": {"user_info": _IDENTITY},
}

#: JSON pointers (list indexes omitted) of the data that must never leave ``vome.raw``, per family.
NEVER_LEAVES: Mapping[str, tuple[str, ...]] = {
    "booking": ("/user/date_of_birth",),
    "profile": (
        "/emergency_contact",
        "/medical_information",
        "/profile_details/date_of_birth",
        "/profile_details/age",
    ),
    "form_submission": (
        "/user/date_of_birth",
        "/medical_info",
        "/emergency_contact",
        "/digital_consent",
        "/attachments",
        "/questions",
    ),
    "sequence_assignment": ("/user_info/date_of_birth",),
}


def project(doc: Mapping[str, Any], spec: Spec) -> dict[str, Any]:
    """The allow-listed part of ``doc``; fields absent from ``doc`` stay absent."""
    out: dict[str, Any] = {}
    for name, sub in spec.items():
        if name not in doc:
            continue
        value = doc[name]
        if sub is None or value is None:
            out[name] = value
        elif isinstance(value, list):
            out[name] = [project(item, sub) for item in value if isinstance(item, Mapping)]
        elif isinstance(value, Mapping):
            out[name] = project(value, sub)
    return out


def identity(family: str, payload: BaseModel) -> dict[str, Any]:
    """The volunteer's identity fields of a validated delivery (:data:`CRM_IDENTITY`), flat: ``{"id",
    "first_name", ...}`` as far as present; empty for a profile, whose own upsert carries the identity. Only the
    object that carries them is serialised: the projection has serialised the whole payload once already."""
    for name, spec in CRM_IDENTITY[family].items():
        carrier = getattr(payload, name, None)
        if isinstance(carrier, BaseModel) and spec is not None:
            return project(carrier.model_dump(mode="json"), spec)
    return {}


def leaving_pointers(family: str) -> list[str]:
    """Every leaf that leaves ``vome.raw`` in any output of ``family``: the allow-list plus the CRM identity."""
    return allowed_pointers(ALLOW[family]) + allowed_pointers(CRM_IDENTITY[family])


def allowed_pointers(spec: Spec, prefix: str = "") -> list[str]:
    """Every leaf the spec lets out, as a JSON pointer without list indexes."""
    out: list[str] = []
    for name, sub in spec.items():
        pointer = f"{prefix}/{name}"
        out.extend([pointer] if sub is None else allowed_pointers(sub, pointer))
    return out


def project_schema(schema: Mapping[str, Any], spec: Spec) -> dict[str, Any]:
    """The JSON Schema of what :func:`project` returns for a document valid against ``schema`` (an object
    schema with inline ``properties``, as the seed's are): only the allow-listed properties, each as the seed
    types it, lists and objects projected like their items. Nothing is ``required``, because ``project`` keeps
    a field only when the document has it. A name the seed does not type is any value (``{}``).
    """
    props: Mapping[str, Any] = schema.get("properties", {})
    out: dict[str, Any] = {}
    for name, sub in spec.items():
        field: Mapping[str, Any] = props.get(name, {})
        if sub is None:
            out[name] = dict(field)
            continue
        kept = {k: v for k, v in field.items() if k not in ("properties", "items", "required")}
        if "items" in field:
            kept["items"] = project_schema(field["items"], sub)
        if "properties" in field:
            kept["properties"] = project_schema(field, sub)["properties"]
        out[name] = kept
    return {"type": "object", "properties": out}


def allowed_schema(family: str) -> dict[str, Any]:
    """The schema of a family's projection: its seed schema (``schemas/vome/<family>.json``) through
    :data:`ALLOW`, so the published description of ``data`` can list no field that the allow-list keeps in."""
    seed: dict[str, Any] = json.loads((SCHEMAS_DIR / "vome" / f"{family}.json").read_text())
    projected = project_schema(seed, ALLOW[family])
    projected["description"] = (
        f"The allow-listed part of the {family} webhook payload (app/domains/vome/privacy.py), typed as "
        f"schemas/vome/{family}.json types it"
    )
    return projected
