"""``crm setup``'s pure decision per property, the property specs it creates, and the demo's CRM outcome tally."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace

import pytest
from hubspot.crm import properties as hp

from app.demo import crm_outcomes
from app.sinks.crm.commands import ACTIVITY_PROPERTIES, CONTACT_PROPERTIES
from app.sinks.crm.properties import (
    BUILTIN_PROPERTIES,
    CUSTOM_PROPERTIES,
    MEETING_FIELDS,
    PropertySpec,
)
from app.sinks.crm.setup import outcome

SPEC = PropertySpec("contacts", "vome_user_id", "string", "text", unique=True)


def test_a_missing_property_is_created_a_matching_one_left_alone() -> None:
    assert outcome(SPEC, None) is None
    same = {"name": "vome_user_id", "type": "string", "fieldType": "text", "hasUniqueValue": True}
    step = outcome(SPEC, same)
    assert step is not None and (step.status, step.detail) == ("exists", "")


@pytest.mark.parametrize(
    ("found", "detail"),
    [
        ({"type": "number", "fieldType": "number", "hasUniqueValue": True}, "type is 'number'"),
        ({"type": "string", "fieldType": "textarea", "hasUniqueValue": True}, "fieldType is 'textarea'"),
        ({"type": "string", "fieldType": "text"}, "hasUniqueValue is False"),
    ],
)
def test_a_property_with_another_definition_is_drift_naming_what_differs(
    found: dict[str, object], detail: str
) -> None:
    step = outcome(SPEC, found)
    assert step is not None and step.status == "drift" and detail in step.detail
    assert str(step).startswith("drift   contacts.vome_user_id (")


def test_every_property_the_sink_writes_is_built_in_or_created_by_setup() -> None:
    created = {(p.object_type, p.name) for p in CUSTOM_PROPERTIES}
    for name in CONTACT_PROPERTIES:
        assert name in BUILTIN_PROPERTIES["contacts"] or ("contacts", name) in created, name
    for field in ACTIVITY_PROPERTIES:
        for name in MEETING_FIELDS[field]:
            assert name in BUILTIN_PROPERTIES["meetings"] or ("meetings", name) in created, name
    assert ("meetings", "switchyard_activity_id") in created
    assert {p.name for p in CUSTOM_PROPERTIES if p.unique} == {
        "vome_user_id",
        "external_id",
        "switchyard_activity_id",
    }
    assert "language" not in CONTACT_PROPERTIES and "hs_language" in BUILTIN_PROPERTIES["contacts"]


@pytest.mark.parametrize("spec", CUSTOM_PROPERTIES, ids=lambda p: f"{p.object_type}.{p.name}")
def test_each_create_body_is_one_the_sdk_would_send(spec: PropertySpec) -> None:
    config = hp.Configuration()
    config.client_side_validation = True
    client = hp.ApiClient(config)
    body = spec.create_body()
    model = client.deserialize(SimpleNamespace(data=json.dumps(body)), "PropertyCreate")
    for attr in model.openapi_types:  # the setters refuse a missing required field or an unknown type
        setattr(model, attr, getattr(model, attr))
    assert client.sanitize_for_serialization(model) == body


def test_crm_outcomes_split_done_commands_into_applied_and_dead_lettered_per_domain() -> None:
    commands = [(0, 0, "vome"), (0, 1, "vome"), (1, 0, "appointments"), (1, 1, "vome"), (0, 2, "vome")]
    waiting = [(0, 2)]
    dead = [("vome", "CRM-404"), ("vome", "CRM-CONTACT-ARCHIVED")]
    out = crm_outcomes(commands, waiting, dead)
    assert (out["vome"].applied, out["vome"].waiting, out["vome"].dead) == (
        1,
        1,
        Counter({"CRM-404": 1, "CRM-CONTACT-ARCHIVED": 1}),
    )
    assert (out["appointments"].applied, out["appointments"].waiting, out["appointments"].dead) == (
        1,
        0,
        Counter(),
    )
