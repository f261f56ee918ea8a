"""Vome privacy: what must never leave ``vome.raw`` appears in no output and no error message.

Secrets are planted in every string field the family's allow-list keeps back (medical information, emergency
contacts, birth dates, consent files, attachments, form answers among them); every emit of ``route``, the
enriched record and the messages of every rejection of those documents are searched for them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from app.core.codecs import encode_json
from app.core.errors import RecordError
from app.core.records import EVENT_TYPE_HEADER, Emit, RawRecord
from app.domains.vome.enrich import TRIGGERS, family_of
from app.domains.vome.generate import generate_with_secrets, invalid_variants
from app.domains.vome.privacy import ALLOW, NEVER_LEAVES, leaving_pointers, project
from app.domains.vome.rules import process, route
from app.domains.vome.state import fold_volunteer
from tests.contract.base import mutations

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def raw(trigger: str | None, value: bytes) -> RawRecord:
    headers = ((EVENT_TYPE_HEADER, trigger.encode()),) if trigger else ()
    return RawRecord(value=value, headers=headers, topic="vome.raw")


def leaked(secrets: Iterable[str], text: str) -> list[str]:
    return [s for s in secrets if s in text]


def emitted_text(emits: Iterable[Emit]) -> str:
    return "\n".join(
        f"{e.topic} {e.key!r} {e.headers!r} {encode_json(e.value).decode() if e.value is not None else ''}"
        for e in emits
    )


def pointers(doc: Any, prefix: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield f"{prefix}/{k}", v
            yield from pointers(v, f"{prefix}/{k}")
    elif isinstance(doc, list):
        for v in doc:
            yield from pointers(v, prefix)


@pytest.mark.parametrize("family", sorted(ALLOW))
def test_no_allow_list_reaches_into_what_never_leaves(family: str) -> None:
    for allowed in leaving_pointers(family):
        for forbidden in NEVER_LEAVES[family]:
            assert allowed != forbidden and not allowed.startswith(forbidden + "/"), (allowed, forbidden)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_planted_secrets_cover_every_forbidden_field(trigger: str) -> None:
    _, body, secrets = generate_with_secrets(random.Random(trigger), trigger)
    assert len(secrets) == len(set(secrets)) > 5
    found = dict(pointers(body))
    for forbidden in NEVER_LEAVES[family_of(trigger)]:
        assert forbidden in found, forbidden
        assert leaked(secrets, json.dumps(found[forbidden])), f"no secret planted under {forbidden}"


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_no_secret_reaches_any_output(trigger: str, seed: int) -> None:
    _, body, secrets = generate_with_secrets(random.Random(f"{trigger}-{seed}"), trigger)
    processed = process(raw(trigger, json.dumps(body).encode()), NOW)
    emits = list(route(processed, NOW))
    feed = [e for e in emits if e.topic == "vome.volunteers.feed"]
    folded = [fold_volunteer(None, e.value, NOW) for e in feed]
    text = emitted_text([*emits, *(x for f in folded for x in f.emits)])
    text += json.dumps(processed.enriched) + json.dumps([f.state for f in folded])
    assert not leaked(secrets, text)


@pytest.mark.parametrize("trigger", TRIGGERS)
def test_no_secret_reaches_any_error_message(trigger: str) -> None:
    _, body, secrets = generate_with_secrets(random.Random(f"errors-{trigger}"), trigger)
    rejected = 0
    candidates: list[tuple[str | None, bytes]] = [
        (trigger, json.dumps(m).encode()) for _, m in mutations(body)
    ]
    candidates += [(v.trigger, v.value) for v in invalid_variants(trigger, body)]
    for header, value in candidates:
        try:
            process(raw(header, value), NOW)
        except RecordError as err:
            rejected += 1
            assert not leaked(secrets, json.dumps(err.as_dict()) + str(err))
    assert rejected > 50


def test_the_leak_check_catches_a_leak() -> None:
    """Guard for the tests above: a projection that let medical info out would be caught."""
    _, body, secrets = generate_with_secrets(random.Random(1), "form_submission.created")
    careless = {**ALLOW["form_submission"], "medical_info": None}
    assert leaked(secrets, json.dumps(project(body, careless)))
    assert not leaked(secrets, json.dumps(project(body, ALLOW["form_submission"])))


def test_project_keeps_only_allow_listed_fields_at_every_level() -> None:
    spec = {"a": None, "b": {"c": None}, "items": {"keep": None}}
    doc = {
        "a": 1,
        "z": 2,
        "b": {"c": 3, "d": 4},
        "items": [{"keep": 5, "drop": 6}, "not-an-object"],
        "x": None,
    }
    assert project(doc, spec) == {"a": 1, "b": {"c": 3}, "items": [{"keep": 5}]}
    assert project({"b": None}, spec) == {"b": None}
