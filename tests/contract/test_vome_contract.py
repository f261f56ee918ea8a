"""Vome: the four family models against ``schemas/vome/*.json``, as jsonschema judges them.

The seed publishes field tables, not schemas; ``schemas/vome/`` transcribes those tables (see each file's
``$comment``), so model and schema are two independent readings of the same seed and must agree on every
single-point mutation of every sample and of generated documents. Invalid documents cover each rule the seed's
tables imply (types per family, nested types, list item types), the two additions (required ids, RFC 3339
timestamps) and the trigger header.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any, ClassVar

import pytest

from app.core.errors import RecordError
from app.core.records import DomainRules
from app.domains.vome.enrich import TRIGGERS, family_of
from app.domains.vome.generate import document, invalid_variants
from app.domains.vome.rules import RULES
from tests.contract.base import NOW, ContractSuite, mutations


def _with(doc: dict[str, Any], value: Any, *path: str | int) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def _without(doc: dict[str, Any], *path: str | int) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return out


class _VomeFamily(ContractSuite):
    rules: ClassVar[DomainRules] = RULES
    family: ClassVar[str]

    def family_triggers(self) -> list[str]:
        return [t for t in TRIGGERS if family_of(t) == self.family]

    def valid_documents(self) -> list[tuple[str | None, Any]]:
        samples = [
            (t, d) for t, d in super().valid_documents() if t is not None and family_of(t) == self.family
        ]
        rng = random.Random(f"vome-contract-{self.family}")
        generated: list[tuple[str | None, Any]] = [(t, document(rng, t)) for t in self.family_triggers()]
        return samples + generated

    def sample(self) -> tuple[str, dict[str, Any]]:
        trigger, doc = self.valid_documents()[0]
        assert trigger is not None
        return trigger, doc

    def family_invalid(self, trigger: str, doc: dict[str, Any]) -> list[tuple[str | None, Any, str]]:
        return []

    def invalid_documents(self) -> list[tuple[str | None, Any, str]]:
        trigger, doc = self.sample()
        common: list[tuple[str | None, Any, str]] = [
            (None, doc, "VOME-UNKNOWN-TRIGGER"),
            (f"{self.family}.exploded", doc, "VOME-UNKNOWN-TRIGGER"),
            ("Booking.Created", doc, "VOME-UNKNOWN-TRIGGER"),
            (trigger, [doc], "DECODE-NOT-OBJECT"),
            (trigger, _without(doc, "id"), "SCHEMA-REQUIRED"),
            (trigger, _with(doc, "", "id"), "SCHEMA-MIN-LENGTH"),
            (trigger, _with(doc, None, "id"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 42, "id"), "SCHEMA-TYPE"),
        ]
        return common + self.family_invalid(trigger, doc)

    def test_every_trigger_of_the_family_has_a_sample(self) -> None:
        sampled = {s.event_type for s in self.rules.samples()}
        assert set(self.family_triggers()) <= sampled

    def test_generated_invalid_variants_rejected_with_their_code(self) -> None:
        rng = random.Random(f"vome-invalid-{self.family}")
        for trigger in self.family_triggers():
            for variant in invalid_variants(trigger, document(rng, trigger)):
                with pytest.raises(RecordError) as info:
                    self.rules.process(variant.raw(), NOW)
                assert info.value.code == variant.code, variant.label
                if info.value.stage == "validate" and variant.code.startswith("SCHEMA-"):
                    assert not self.schema_verdict(json.loads(variant.value)), variant.label

    def test_model_and_schema_agree_on_mutations_of_generated_documents(self) -> None:
        rng = random.Random(f"vome-mutations-{self.family}")
        disagreements = []
        for _ in range(3):
            trigger = rng.choice(self.family_triggers())
            doc = document(rng, trigger)
            for what, mutated in mutations(doc):
                expected = self.schema_verdict(mutated)
                if self.model_verdict(trigger, mutated) != expected:
                    disagreements.append(f"{what}: schema says {'valid' if expected else 'invalid'}")
        assert not disagreements, "\n".join(disagreements[:30])


class TestVomeBookingContract(_VomeFamily):
    family = "booking"
    schema_file = "vome/booking.json"

    def family_invalid(self, trigger: str, doc: dict[str, Any]) -> list[tuple[str | None, Any, str]]:
        return [
            (trigger, _without(doc, "user"), "SCHEMA-REQUIRED"),
            (trigger, _with(doc, None, "user"), "SCHEMA-TYPE"),
            (trigger, _without(doc, "user", "id"), "SCHEMA-REQUIRED"),
            (trigger, _with(doc, "", "user", "id"), "SCHEMA-MIN-LENGTH"),
            (trigger, _with(doc, "2", "status"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 2.5, "status"), "SCHEMA-TYPE"),
            (trigger, _with(doc, False, "status"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "4", "shift", "spots"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 7, "shift", "shift_title"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "female", "user", "gender"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "50.07,14.43", "user", "address_coordinates"), "SCHEMA-TYPE"),
            (trigger, _with(doc, [50.07, 14.43], "user", "address_coordinates"), "SCHEMA-TYPE"),
            (trigger, _with(doc, ["a"], "opportunity", "category"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "15 March 2025, 9:00", "shift", "shift_start_at"), "SCHEMA-FORMAT"),
            (trigger, _with(doc, "2025-03-15T09:00:00", "shift", "shift_end_at"), "SCHEMA-FORMAT"),
            (trigger, _with(doc, "2025-02-30T09:00:00Z", "created_at"), "SCHEMA-FORMAT"),
            (trigger, _with(doc, 1741942800, "arrival_time"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 5, "hours_approved_by"), "SCHEMA-TYPE"),
        ]


class TestVomeProfileContract(_VomeFamily):
    family = "profile"
    schema_file = "vome/profile.json"

    def family_invalid(self, trigger: str, doc: dict[str, Any]) -> list[tuple[str | None, Any, str]]:
        return [
            (trigger, _with(doc, "12", "logged_hours"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "3", "completed_shifts"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "false", "is_offline"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 1, "is_following"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "yes", "medical_information", "has_medical_info"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 0, "profile_details", "gender"), "SCHEMA-TYPE"),
            (trigger, _with(doc, 34, "profile_details", "age"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "Czech", "profile_details", "languages"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "yesterday", "profile_details", "created_at"), "SCHEMA-FORMAT"),
            (trigger, _with(doc, "1", "custom_fields", 0, "custom_field", "field_type"), "SCHEMA-TYPE"),
            (
                trigger,
                _with(doc, "2", "custom_fields", 0, "custom_field_value", 0, "value", "order"),
                "SCHEMA-TYPE",
            ),
            (trigger, _with(doc, ["tag"], "profile_tags"), "SCHEMA-TYPE"),
            (trigger, _with(doc, {"id": "x"}, "opportunities"), "SCHEMA-TYPE"),
        ]


class TestVomeFormSubmissionContract(_VomeFamily):
    family = "form_submission"
    schema_file = "vome/form_submission.json"

    def family_invalid(self, trigger: str, doc: dict[str, Any]) -> list[tuple[str | None, Any, str]]:
        return [
            (trigger, _without(doc, "user"), "SCHEMA-REQUIRED"),
            (trigger, _without(doc, "user", "id"), "SCHEMA-REQUIRED"),
            (trigger, _with(doc, 1, "user", "gender"), "SCHEMA-TYPE"),
            (trigger, _with(doc, ["50.07", "14.43"], "user", "address_coordinates"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "true", "questions", 0, "responded"), "SCHEMA-TYPE"),
            (trigger, _with(doc, [1, 2], "questions", 1, "question", "options"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "1", "digital_consent", 0, "consent_status"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "Monday", "general_availability", 0, "day"), "SCHEMA-TYPE"),
            (trigger, _with(doc, {"id": "a"}, "attachments"), "SCHEMA-TYPE"),
            (trigger, _with(doc, ["diabetes"], "medical_info"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "Tomáš", "emergency_contact"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "10/03/2025", "created_at"), "SCHEMA-FORMAT"),
        ]


class TestVomeSequenceAssignmentContract(_VomeFamily):
    family = "sequence_assignment"
    schema_file = "vome/sequence_assignment.json"

    def family_invalid(self, trigger: str, doc: dict[str, Any]) -> list[tuple[str | None, Any, str]]:
        return [
            (trigger, _without(doc, "user_info"), "SCHEMA-REQUIRED"),
            (trigger, _without(doc, "user_info", "id"), "SCHEMA-REQUIRED"),
            (trigger, _with(doc, "female", "user_info", "gender"), "SCHEMA-TYPE"),
            (trigger, _with(doc, "1", "sequence_info", "step_info", 0, "step"), "SCHEMA-TYPE"),
            (trigger, _with(doc, {"step": 1}, "sequence_info", "step_info"), "SCHEMA-TYPE"),
            (
                trigger,
                _with(
                    doc,
                    1,
                    "sequence_info",
                    "step_info",
                    0,
                    "orientation_details",
                    0,
                    "user_orientation",
                    "status",
                ),
                "SCHEMA-TYPE",
            ),
            (
                trigger,
                _with(
                    doc,
                    True,
                    "sequence_info",
                    "step_info",
                    1,
                    "interview_details",
                    0,
                    "user_interview",
                    "interview",
                ),
                "SCHEMA-TYPE",
            ),
            (trigger, _with(doc, "2025-03-20 16:30", "updated_at"), "SCHEMA-FORMAT"),
        ]
