"""The appointments webhook against its seed (``003_7cfa94b6317476cc.txt``).

The seed publishes no JSON Schema (a rendered API reference with an example), so there is no schema to agree
with: the base class skips that part. Instead every enum, limit, required field and closed object the seed
states is broken once (``generate.invalid_documents``), and a handful are spelled out here by hand so the
contract does not rest on the generator alone.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any, ClassVar

import pytest

from app.core.errors import RecordError
from app.core.records import DomainRules
from app.domains.appointments import generate
from app.domains.appointments.models import EVENT_TYPES, STATUSES
from app.domains.appointments.rules import RULES
from tests.contract.base import ContractSuite


def _seed_example() -> dict[str, Any]:
    sample = next(s for s in RULES.samples() if s.name == "accept-seed-example")
    loaded: dict[str, Any] = json.loads(sample.value)
    return loaded


def _with(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    *parents, last = [int(p) if p.isdigit() else p for p in path.strip("/").split("/")]
    node: Any = out
    for p in parents:
        node = node[p]
    node[last] = value
    return out


class TestAppointmentsContract(ContractSuite):
    rules: ClassVar[DomainRules] = RULES
    schema_file = None

    def valid_documents(self) -> list[tuple[str | None, Any]]:
        rng = random.Random(3)
        generated = [(None, d) for d in generate.life_cycles(rng, 5)]
        return [*super().valid_documents(), *generated, (None, generate.base_document(rng))]

    def invalid_documents(self) -> list[tuple[str | None, Any, str]]:
        seed = _seed_example()
        by_hand = [
            (_with(seed, "/entity", "Booking"), "SCHEMA-ENUM"),
            (_with(seed, "/data/eventType", "DELETE"), "SCHEMA-ENUM"),
            (_with(seed, "/data/appointment/status", "PENDING"), "SCHEMA-ENUM"),
            (_with(seed, "/data/appointment/meetingType", "TEAMS"), "SCHEMA-ENUM"),
            (_with(seed, "/data/appointment/participants/0/type", "ROBOT"), "SCHEMA-ENUM"),
            (_with(seed, "/data/appointment/subject/externalId", "s" * 256), "SCHEMA-MAX-LENGTH"),
            (_with(seed, "/data/appointment/participants/0/employee/email", "e" * 321), "SCHEMA-MAX-LENGTH"),
            (_with(seed, "/data/appointment/participants/0/videoUrl", "u" * 2001), "SCHEMA-MAX-LENGTH"),
            (_with(seed, "/data/appointment/location/countryCode", "NLD"), "SCHEMA-MAX-LENGTH"),
            (_with(seed, "/data/appointment/subject/order", -1), "SCHEMA-MINIMUM"),
            (_with(seed, "/data/appointment/office/floor", 3), "SCHEMA-ADDITIONAL-PROPERTY"),
        ]
        generated = [(inv.document, inv.code) for inv in generate.invalid_documents(random.Random(11))]
        return [(None, doc, code) for doc, code in [*by_hand, *generated]]

    def test_seed_placeholder_country_code_breaks_the_seed_limit(self) -> None:
        """The seed's own example writes countryCode "string", which its "exactly 2" rule rejects: the sample
        uses a real code, and the placeholder must stay rejected."""
        with pytest.raises(RecordError) as info:
            self.process(
                None, _with(_seed_example(), "/data/appointment/office/location/countryCode", "string")
            )
        assert info.value.code == "SCHEMA-MAX-LENGTH"
        assert info.value.path == "/data/appointment/office/location/countryCode"

    @pytest.mark.parametrize("event_type", EVENT_TYPES)
    def test_every_event_type_accepted(self, event_type: str) -> None:
        assert (
            self.process(None, _with(_seed_example(), "/data/eventType", event_type)).event_type == event_type
        )

    @pytest.mark.parametrize("status", STATUSES)
    def test_every_status_group_accepted_now_and_before(self, status: str) -> None:
        doc = _with(
            _with(_seed_example(), "/data/appointment/status", status),
            "/data/previousAppointment/status",
            status,
        )
        assert self.process(None, doc).enriched["status"] == status

    def test_open_objects_stay_open(self) -> None:
        """The seed closes nested objects only: the envelope, data, appointment and participants may grow."""
        doc = _seed_example()
        doc["deliveredAt"] = "2024-05-04T09:42:01+00:00"
        doc["data"]["traceId"] = "t-1"
        doc["data"]["appointment"]["channelDetails"] = {"x": 1}
        doc["data"]["appointment"]["participants"][0]["seat"] = 2
        self.process(None, doc)

    def test_nullable_previous_appointment_but_key_required(self) -> None:
        self.process(None, _with(_seed_example(), "/data/previousAppointment", None))
        doc = _seed_example()
        del doc["data"]["previousAppointment"]
        with pytest.raises(RecordError) as info:
            self.process(None, doc)
        assert (info.value.code, info.value.path) == ("SCHEMA-REQUIRED", "/data/previousAppointment")

    def test_callback_request_optional_despite_seed(self) -> None:
        """Deliberate deviation: marked Required by the seed, absent from its own example."""
        assert "callbackRequest" not in _seed_example()["data"]["appointment"]
        self.process(None, _with(_seed_example(), "/data/appointment/callbackRequest", True))

    def test_lead_segment_id_integer_or_string(self) -> None:
        self.process(None, _with(_seed_example(), "/data/appointment/leadSegment/id", "LS-7"))
        self.process(None, _with(_seed_example(), "/data/previousAppointment/leadSegment/id", 7))
