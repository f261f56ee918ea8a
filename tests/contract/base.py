"""One contract-test base class, subclassed per domain.

A domain's contract test says three things: its seed samples are accepted; generated valid documents are
accepted; and, where the seed publishes a JSON Schema, the domain's model gives the *same verdict* as that schema
on the samples and on every mutation the generator below makes of them (drop a field, wrong type, extra
property at every level, bad enum, bad date). Subclass :class:`ContractSuite`, set the class attributes, and
override ``schema_verdict`` only where the domain deliberately deviates from its seed (say so there).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import jsonschema
import pytest

from app.core.errors import RecordError
from app.core.records import EVENT_TYPE_HEADER, DomainRules, RawRecord

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 1, tzinfo=UTC)

_WRONG_TYPES: tuple[Any, ...] = (None, True, 12345, 1.5, "a-string", [], {})


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def _delete(doc: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return out


def mutations(doc: Any) -> Iterator[tuple[str, Any]]:
    """Every single-point mutation of ``doc``: (description, mutated document)."""
    for path, node in list(_paths(doc)):
        where = "/" + "/".join(map(str, path))
        if path and isinstance(path[-1], str):
            yield f"drop {where}", _delete(doc, path)
        if path:
            for wrong in _WRONG_TYPES:
                if type(wrong) is not type(node):
                    yield f"{where} := {wrong!r}", _set(doc, path, wrong)
            if isinstance(node, str):
                yield f"{where} := bad date/enum", _set(doc, path, "not-a-date-or-enum")
        if isinstance(node, dict):
            extra = copy.deepcopy(node)
            extra["zz_unexpected"] = 1
            yield f"extra property in {where}", _set(doc, path, extra) if path else extra


class ContractSuite:
    """Subclass per domain. Class attributes say what the domain is held against."""

    rules: ClassVar[DomainRules]
    #: path under ``schemas/`` of the seed's JSON Schema, or None when the seed has none
    schema_file: ClassVar[str | None] = None
    #: JSON pointer inside the raw document that the schema describes ("" = the whole body)
    schema_root: ClassVar[str] = ""
    #: the format checker the schema is judged with (a domain replaces a check the stock one gets wrong)
    format_checker: ClassVar[jsonschema.FormatChecker] = jsonschema.Draft7Validator.FORMAT_CHECKER

    # ---- hooks -------------------------------------------------------------------------------------------
    def valid_documents(self) -> list[tuple[str | None, Any]]:
        """(event_type, document) pairs that must be accepted; defaults to the domain's samples."""
        return [(s.event_type, json.loads(s.value)) for s in self.rules.samples()]

    def invalid_documents(self) -> list[tuple[str | None, Any, str]]:
        """(event_type, document, expected error code) triples that must be rejected with that code."""
        return []

    def schema(self) -> dict[str, Any]:
        assert self.schema_file is not None
        loaded: dict[str, Any] = json.loads((ROOT / "schemas" / self.schema_file).read_text())
        return loaded

    def schema_verdict(self, doc: Any) -> bool:
        """True when the seed's schema accepts ``doc`` (the part of it at ``schema_root``)."""
        target = _resolve(doc, self.schema_root)
        if target is _MISSING:
            return False
        validator = jsonschema.Draft7Validator(self.schema(), format_checker=self.format_checker)
        return validator.is_valid(target)

    # ---- shared machinery --------------------------------------------------------------------------------
    def process(self, event_type: str | None, doc: Any) -> Any:
        headers = ((EVENT_TYPE_HEADER, event_type.encode()),) if event_type else ()
        raw = RawRecord(value=json.dumps(doc).encode(), headers=headers, topic=f"{self.rules.name}.raw")
        return self.rules.process(raw, NOW)

    def model_verdict(self, event_type: str | None, doc: Any) -> bool:
        try:
            self.process(event_type, doc)
        except RecordError:
            return False
        return True

    # ---- the tests every domain gets ---------------------------------------------------------------------
    def test_samples_exist(self) -> None:
        assert list(self.rules.samples()), "a domain must ship at least one seed sample"

    def test_valid_documents_accepted(self) -> None:
        for event_type, doc in self.valid_documents():
            self.process(event_type, doc)  # raises on rejection, which fails the test with the error code

    def test_invalid_documents_rejected_with_code(self) -> None:
        for event_type, doc, code in self.invalid_documents():
            with pytest.raises(RecordError) as info:
                self.process(event_type, doc)
            assert info.value.code == code, f"{doc!r}: expected {code}, got {info.value}"

    def test_schema_accepts_samples(self) -> None:
        if self.schema_file is None:
            pytest.skip("the seed publishes no JSON Schema for this domain")
        for _event_type, doc in self.valid_documents():
            assert self.schema_verdict(doc)

    def test_model_and_schema_agree_on_mutations(self) -> None:
        if self.schema_file is None:
            pytest.skip("the seed publishes no JSON Schema for this domain")
        checked = 0
        disagreements: list[str] = []
        for event_type, doc in self.valid_documents():
            for what, mutated in mutations(doc):
                checked += 1
                expected = self.schema_verdict(mutated)
                if self.model_verdict(event_type, mutated) != expected:
                    disagreements.append(f"{what}: schema says {'valid' if expected else 'invalid'}")
        assert checked >= 50, "too few mutations to say anything"
        assert not disagreements, "\n".join(disagreements[:30])


class _Missing:
    pass


_MISSING = _Missing()


def _resolve(doc: Any, pointer: str) -> Any:
    node = doc
    for part in [p for p in pointer.split("/") if p]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return _MISSING
    return node
