"""Pismo customer_outgoing v1: the model against the seed's draft-07 schema, as jsonschema judges it.

Verdicts are compared on the samples and the seed's own example, on every single-point mutation (base class),
on hypothesis-generated near-valid documents, and on the generator's output. The one deliberate deviation: an
entity id outside Avro's 64-bit long (or one the JSON parser could only read as a float of 2**53 or more,
whose low digits may be lost) is valid JSON Schema but cannot be audited faithfully, so it is rejected at the
enrich stage (ENRICH-OUT-OF-RANGE); generated integers stay inside that range and the case is tested apart.

The oracle's ``date-time`` check is RFC 3339's, not jsonschema's stock one: ``rfc3339-validator`` anchors its
pattern with ``$``, which also matches before a final newline, so it accepts "2021-08-11T11:25:00Z\n". RFC 3339's
``date-time`` ends at the offset, and the seed says ``format: date-time``; :data:`RFC3339_FORMATS` is the stock
checker with that one check made whole-string.
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


def _rfc3339_date_time(instance: object) -> bool:
    """jsonschema's ``date-time`` check on the whole string: the pattern has no newline in it, so a string
    ending in one is never a date-time (``rfc3339-validator`` lets it through only by its ``$`` anchor)."""
    if not isinstance(instance, str):
        return True
    return not instance.endswith("\n") and bool(validate_rfc3339(instance.upper()))


RFC3339_FORMATS = copy.deepcopy(jsonschema.Draft7Validator.FORMAT_CHECKER)
RFC3339_FORMATS.checks("date-time")(_rfc3339_date_time)


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


def _valid_date_times() -> st.SearchStrategy[str]:
    """RFC 3339 date-times the format checker accepts, in every spelling it allows."""
    parts = st.tuples(
        st.integers(1, 9999),
        st.integers(1, 12),
        st.integers(1, 28),
        st.sampled_from("Tt"),
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=9).map(lambda d: "." + d)),
        st.one_of(
            st.sampled_from(["Z", "z"]),
            st.tuples(st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)).map(
                lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"
            ),
        ),
    )
    return parts.map(
        lambda p: f"{p[0]:04d}-{p[1]:02d}-{p[2]:02d}{p[3]}{p[4]:02d}:{p[5]:02d}:{p[6]:02d}{p[7]}{p[8]}"
    )


def _optional(fields: dict[str, st.SearchStrategy[Any]], required: set[str]) -> st.SearchStrategy[Any]:
    """An object with every required field and any subset of the optional ones."""
    return st.tuples(st.fixed_dictionaries(fields), st.sets(st.sampled_from(sorted(fields)))).map(
        lambda p: {k: v for k, v in p[0].items() if k in required or k in p[1]}
    )


INTEGER_IDS = st.one_of(LONG, LONG, st.integers(1 - 2**53, 2**53 - 1).map(float))
VALID_DOCUMENTS = _optional(
    {
        "code": st.text(max_size=12),
        "message": st.text(max_size=40),
        "migration": _optional(
            {
                "id": st.text(max_size=20),
                "version_date": _valid_date_times(),
                "account_id": st.text(max_size=20),
                "phase_id": st.text(max_size=20),
            },
            {"id", "version_date", "account_id"},
        ),
        "status": st.sampled_from(["SUCCESS", "FAIL"]),
        "entity": st.fixed_dictionaries({"account_id": INTEGER_IDS, "customer_id": INTEGER_IDS}),
        "operation": st.sampled_from(["CREATION", "UPDATE"]),
    },
    {"code", "message", "migration", "status"},
)
WRONG_VALUES = st.one_of(
    JSON_SCALARS,
    _date_times(),
    st.sampled_from(["SUCCESS", "FAIL", "CREATION", "UPDATE", "success", "DELETION", 9999.0, 2**53 - 1]),
    st.lists(LONG, max_size=2),
    st.dictionaries(st.sampled_from(["account_id", "customer_id", "id", "zz"]), LONG, max_size=3),
)


def _nodes(doc: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    if isinstance(doc, dict):
        for k, v in doc.items():
            found.extend(_nodes(v, (*path, k)))
    return found


def _perturbed(doc: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``doc`` with one node replaced, removed, or given an extra property; or ``doc`` itself."""
    objects = [p for p in _nodes(doc) if isinstance(_at(doc, p), dict)]
    leaves = [p for p in _nodes(doc) if p]
    replaced = st.tuples(st.sampled_from(leaves), WRONG_VALUES).map(lambda pv: _with(doc, pv[0], pv[1]))
    removed = st.sampled_from(leaves).map(lambda p: _without(doc, p))
    extended = st.tuples(st.sampled_from(objects), st.sampled_from(["zz", "id ", "Status", "phaseId"])).map(
        lambda pk: _with(doc, (*pk[0], pk[1]), 1) if pk[0] else {**doc, pk[1]: 1}
    )
    return st.one_of(st.just(doc), replaced, replaced, removed, extended)


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


DOCUMENTS = VALID_DOCUMENTS.flatmap(_perturbed)


class TestPismoContract(ContractSuite):
    rules = RULES
    schema_file = SCHEMA_FILE
    format_checker = RFC3339_FORMATS

    def valid_documents(self) -> list[tuple[str | None, Any]]:
        edge_cases = [
            _with(SEED_EXAMPLE, ("entity",), {"account_id": 9999.0, "customer_id": -1}),
            _with(SEED_EXAMPLE, ("migration", "version_date"), "2024-02-29t23:59:59.123456789+05:30"),
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
            "2021-08-11T11:25:00Z\n",  # RFC 3339 ends at the offset; rfc3339-validator's ``$`` lets this by
            "2021-08-11T11:25:00.000+02:00\n",
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
                doc = json.loads(g.value or b"")
            except ValueError:
                continue
            if not isinstance(doc, dict) or g.code == "ENRICH-OUT-OF-RANGE":
                continue
            checked += 1
            assert self.model_verdict(None, doc) == self.schema_verdict(doc) == (g.code is None), g.label
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
    assert is_rfc3339_date_time(value) == RFC3339_FORMATS.conforms(value, "date-time")


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\n\n"])
def test_nothing_may_follow_the_offset(suffix: str) -> None:
    """RFC 3339's date-time ends at the offset. The stock checker accepts a single trailing LF, the oracle here
    and the model do not."""
    value = "2021-08-11T11:25:00.000Z" + suffix
    assert not is_rfc3339_date_time(value)
    assert not RFC3339_FORMATS.conforms(value, "date-time")


def test_the_oracle_only_differs_from_the_stock_checker_on_the_trailing_newline() -> None:
    """Guard on the oracle itself: it is jsonschema's checker, except for "...\\n"."""
    stock = jsonschema.Draft7Validator.FORMAT_CHECKER
    assert stock.conforms("2021-08-11T11:25:00Z\n", "date-time")
    assert not RFC3339_FORMATS.conforms("2021-08-11T11:25:00Z\n", "date-time")
    for value in ("2021-08-11T11:25:00Z", "2021-02-29T11:25:00Z", "2021-08-11T11:25:00", "x"):
        assert stock.conforms(value, "date-time") == RFC3339_FORMATS.conforms(value, "date-time")


def test_format_checker_really_checks_date_time() -> None:
    """Without rfc3339-validator installed, jsonschema silently accepts any date-time: the comparison above
    would then prove nothing."""
    assert not jsonschema.Draft7Validator.FORMAT_CHECKER.conforms("2021-08-11T11:25:00", "date-time")
