"""Pismo customer_outgoing v1: the model against the seed's draft-07 schema, as jsonschema judges it.

Verdicts are compared on the samples and the seed's own example, on every single-point mutation (base class),
on hypothesis-generated near-valid documents, and on the generator's output. The one deliberate deviation:
an entity id outside Avro's 64-bit long is valid JSON Schema but cannot be audited, so it is rejected at the
enrich stage (ENRICH-OUT-OF-RANGE); generated integers stay inside that range and the case is tested apart.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rfc3339_validator import validate_rfc3339

from app.core.errors import EnrichError
from app.domains.pismo.generate import generate
from app.domains.pismo.models import is_rfc3339_date_time
from app.domains.pismo.rules import RULES
from tests.contract.base import ROOT, ContractSuite

SCHEMA_FILE = "pismo/customer_outgoing-1.json"
SEED_SCHEMA: dict[str, Any] = json.loads((ROOT / "schemas" / SCHEMA_FILE).read_text())
SEED_EXAMPLE: dict[str, Any] = SEED_SCHEMA["examples"][0]
LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), LONG, st.floats(-1e9, 1e9), st.text(max_size=8))


def _with(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def _without(doc: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return out


def _date_times() -> st.SearchStrategy[str]:
    """Strings near RFC 3339: every component sometimes out of range, both letter cases, odd separators."""

    def two(lo: int, hi: int) -> st.SearchStrategy[str]:
        return st.integers(lo, hi).map(lambda n: f"{n:02d}")

    offset = st.one_of(
        st.sampled_from(["Z", "z", "", "+0000", "UTC", "+00"]),
        st.tuples(st.sampled_from("+-"), two(0, 25), two(0, 61)).map(lambda t: f"{t[0]}{t[1]}:{t[2]}"),
    )
    fraction = st.one_of(st.just(""), st.text("0123456789", min_size=0, max_size=9).map(lambda d: "." + d))
    structured = st.tuples(
        st.integers(0, 9999).map(lambda y: f"{y:04d}"),
        two(0, 13),
        two(0, 32),
        st.sampled_from(["T", "t", " ", "_"]),
        two(0, 25),
        two(0, 61),
        two(0, 61),
        fraction,
        offset,
        st.sampled_from(["", "", "", "\n", " ", "\n\n"]),
    ).map(lambda p: f"{p[0]}-{p[1]}-{p[2]}{p[3]}{p[4]}:{p[5]}:{p[6]}{p[7]}{p[8]}{p[9]}")
    return st.one_of(structured, structured, structured, st.text(max_size=30))


def _maybe(
    value: st.SearchStrategy[Any], wrong: st.SearchStrategy[Any] = JSON_SCALARS
) -> st.SearchStrategy[Any]:
    """Mostly a right value, sometimes a wrong one, sometimes absent (``...``)."""
    return st.one_of(value, value, value, wrong, st.just(...))


def _object(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    extra = st.dictionaries(st.sampled_from(["zz", "id ", "Status", "phaseId"]), JSON_SCALARS, max_size=1)

    def build(parts: tuple[dict[str, Any], dict[str, Any], bool]) -> dict[str, Any]:
        values, more, with_more = parts
        doc = {k: v for k, v in values.items() if v is not ...}
        if with_more:
            doc.update(more)
        return doc

    sometimes = st.integers(0, 4).map(lambda n: n == 0)
    return st.tuples(st.fixed_dictionaries(fields), extra, sometimes).map(build)


INTEGER_IDS = st.one_of(LONG, LONG, st.integers(-(2**53), 2**53).map(float), st.floats(-1e6, 1e6))
ENTITY = _object({"account_id": _maybe(INTEGER_IDS), "customer_id": _maybe(INTEGER_IDS)})
MIGRATION = _object(
    {
        "id": _maybe(st.text(max_size=20)),
        "version_date": _maybe(_date_times()),
        "account_id": _maybe(st.text(max_size=20)),
        "phase_id": _maybe(st.text(max_size=20)),
    }
)
DOCUMENTS = _object(
    {
        "code": _maybe(st.text(max_size=12)),
        "message": _maybe(st.text(max_size=40)),
        "migration": _maybe(MIGRATION),
        "status": _maybe(st.sampled_from(["SUCCESS", "FAIL", "success", "PENDING"])),
        "entity": _maybe(ENTITY, st.one_of(JSON_SCALARS, st.lists(LONG, max_size=2))),
        "operation": _maybe(st.sampled_from(["CREATION", "UPDATE", "DELETION", "update"])),
    }
)


class TestPismoContract(ContractSuite):
    rules = RULES
    schema_file = SCHEMA_FILE

    def valid_documents(self) -> list[tuple[str | None, Any]]:
        edge_cases = [
            _with(SEED_EXAMPLE, ("entity",), {"account_id": 9999.0, "customer_id": -1}),
            _with(SEED_EXAMPLE, ("migration", "version_date"), "2024-02-29t23:59:59.123456789+05:30"),
            _with(SEED_EXAMPLE, ("migration", "version_date"), "2021-08-11T11:25:00z\n"),
            {k: v for k, v in SEED_EXAMPLE.items() if k not in {"entity", "operation"}},
        ]
        return [*super().valid_documents(), (None, SEED_EXAMPLE), *((None, d) for d in edge_cases)]

    def invalid_documents(self) -> list[tuple[str | None, Any, str]]:
        seed = SEED_EXAMPLE
        cases: list[tuple[dict[str, Any], str]] = [
            *((_without(seed, (f,)), "SCHEMA-REQUIRED") for f in ("code", "message", "migration", "status")),
            *(
                (_without(seed, ("migration", f)), "SCHEMA-REQUIRED")
                for f in ("id", "version_date", "account_id")
            ),
            *((_without(seed, ("entity", f)), "SCHEMA-REQUIRED") for f in ("account_id", "customer_id")),
            (_with(seed, ("status",), "PENDING"), "SCHEMA-ENUM"),
            (_with(seed, ("status",), "success"), "SCHEMA-ENUM"),
            (_with(seed, ("operation",), "DELETION"), "SCHEMA-ENUM"),
            (_with(seed, ("operation",), "update"), "SCHEMA-ENUM"),
            (_with(seed, ("migrated_at",), "2021-08-11"), "SCHEMA-ADDITIONAL-PROPERTY"),
            (_with(seed, ("migration", "country"), "BR"), "SCHEMA-ADDITIONAL-PROPERTY"),
            (_with(seed, ("entity", "program_id"), 7), "SCHEMA-ADDITIONAL-PROPERTY"),
            (_with(seed, ("entity", "account_id"), "9999"), "SCHEMA-TYPE"),
            (_with(seed, ("entity", "account_id"), True), "SCHEMA-TYPE"),
            (_with(seed, ("entity", "customer_id"), 1234.5), "SCHEMA-TYPE"),
            (_with(seed, ("entity", "customer_id"), None), "SCHEMA-TYPE"),
            (_with(seed, ("entity",), None), "SCHEMA-TYPE"),
            (_with(seed, ("entity",), [9999, 1234]), "SCHEMA-TYPE"),
            (_with(seed, ("operation",), None), "SCHEMA-TYPE"),
            (_with(seed, ("migration", "phase_id"), None), "SCHEMA-TYPE"),
            (_with(seed, ("migration", "id"), 42), "SCHEMA-TYPE"),
            (_with(seed, ("migration", "account_id"), None), "SCHEMA-TYPE"),
            (_with(seed, ("migration",), "migration-id"), "SCHEMA-TYPE"),
            (_with(seed, ("code",), 1), "SCHEMA-TYPE"),
            (_with(seed, ("message",), None), "SCHEMA-TYPE"),
            (_with(seed, ("migration", "version_date"), 1628680500), "SCHEMA-TYPE"),
        ]
        for bad_date in (
            "2021-08-11T11:25:00.000",  # no offset
            "2021-08-11 11:25:00Z",
            "2021-08-11",
            "2021-02-29T11:25:00Z",
            "0000-01-01T00:00:00Z",
            "2021-08-11T24:00:00Z",
            "2021-08-11T11:25:60Z",
            "2021-08-11T11:25:00+0300",
            "2021-08-11T11:25:00.Z",
            "2021-08-11T11:25:00Z ",
        ):
            cases.append((_with(seed, ("migration", "version_date"), bad_date), "SCHEMA-FORMAT"))
        return [(None, doc, code) for doc, code in cases]

    def test_invalid_documents_are_invalid_for_the_schema_too(self) -> None:
        for _event_type, doc, _code in self.invalid_documents():
            assert not self.schema_verdict(doc), doc

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(DOCUMENTS)
    def test_model_and_schema_agree_on_generated_documents(self, doc: dict[str, Any]) -> None:
        assert self.model_verdict(None, doc) == self.schema_verdict(doc)

    def test_model_and_schema_agree_on_generator_output(self) -> None:
        checked = 0
        for g in generate(random.Random(2026), 600, invalid_ratio=0.5):
            try:
                doc = json.loads(g.value)
            except ValueError:
                continue
            if not isinstance(doc, dict) or g.expected_code == "ENRICH-OUT-OF-RANGE":
                continue
            checked += 1
            assert self.model_verdict(None, doc) == self.schema_verdict(doc) == g.valid, g.label
        assert checked > 400

    def test_integer_beyond_avro_long_is_valid_schema_but_rejected_at_enrich(self) -> None:
        doc = _with(SEED_EXAMPLE, ("entity", "account_id"), 2**63)
        assert self.schema_verdict(doc)
        with pytest.raises(EnrichError) as info:
            self.process(None, doc)
        assert (info.value.code, info.value.path) == ("ENRICH-OUT-OF-RANGE", "/entity/account_id")


@settings(max_examples=1000, deadline=None)
@given(_date_times())
def test_date_time_check_is_the_schema_format_checker(value: str) -> None:
    checker = jsonschema.Draft7Validator.FORMAT_CHECKER
    assert (
        is_rfc3339_date_time(value) == checker.conforms(value, "date-time") == validate_rfc3339(value.upper())
    )


def test_format_checker_really_checks_date_time() -> None:
    """Without rfc3339-validator installed, jsonschema silently accepts any date-time: the comparison above
    would then prove nothing."""
    assert not jsonschema.Draft7Validator.FORMAT_CHECKER.conforms("2021-08-11T11:25:00", "date-time")
