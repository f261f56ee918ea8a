"""Lära's models held against the seed (004, French API documentation of cycle/*).

The seed publishes no JSON Schema, so there is no schema verdict to agree with: the contract is the seed's
field lists, enums (languageId 1-4, durationUnit 0-4, requirement type 1-3) and its error codes 1000-1010,
written out below as invalid documents with the code each must answer. Every single-point mutation of the
samples must still end in an accepted record or a RecordError, never in another exception.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from app.core.errors import RecordError
from app.domains.lara.generate import valid_documents
from app.domains.lara.rules import RULES
from tests.contract.base import ContractSuite, mutations


def _sample(name: str) -> dict[str, Any]:
    for s in RULES.samples():
        if s.name == name:
            doc: dict[str, Any] = json.loads(s.value)
            return doc
    raise KeyError(name)


def _edit(name: str, path: tuple[Any, ...], value: Any = ..., *, drop: bool = False) -> dict[str, Any]:
    doc = copy.deepcopy(_sample(name))
    node: Any = doc
    for p in path[:-1]:
        node = node[p]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


CYCLE = "cycle--getlist"
PERIOD = "period--getperiodlist"
PROGRESS = "user_progress--getuserprogress"
SET = "member_statuses--updatememberstatuses"
LISTED = "member_statuses--getmemberstatuses"
UPDATE = "member_status_update--updatememberstatus"
CHANGE = "member_status_change--changecurrentmemberstatus"


def _type(name: str) -> str:
    return name.split("--")[0]


def _anonymous(name: str) -> dict[str, Any]:
    doc = copy.deepcopy(_sample(name))
    for f in ("userId", "customFieldAPIName", "customFieldValue"):
        doc.pop(f, None)
    return doc


INVALID: list[tuple[str, dict[str, Any], str]] = [
    # 1000 required id / 1001 invalid id
    (CYCLE, _edit(CYCLE, ("cycleId",), drop=True), "LARA-1000"),
    (CYCLE, _edit(CYCLE, ("cycleId",), None), "LARA-1000"),
    (PERIOD, _edit(PERIOD, ("cycleId",), drop=True), "LARA-1000"),
    (PERIOD, _edit(PERIOD, ("cyclePeriodId",), drop=True), "LARA-1000"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "id"), drop=True), "LARA-1000"),
    (PROGRESS, _edit(PROGRESS, ("id",), drop=True), "LARA-1000"),
    (CYCLE, _edit(CYCLE, ("cycleId",), "vBW5xMw1VQ2A8DFaNy22z"), "LARA-1001"),
    (CYCLE, _edit(CYCLE, ("cycleId",), "vBW5xMw1VQ2A8DFaNy22zB"), "LARA-1001"),
    (CYCLE, _edit(CYCLE, ("ruleId",), ""), "LARA-1001"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "providerId"), 42), "LARA-1001"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "parentId"), "WLLhw8aZEA%2fsSNA4V%2fQ0hQ%3d"), "LARA-1001"),
    (PROGRESS, _edit(PROGRESS, ("id",), "DTUvbcrKNN3szXg6aQY%2gSg%3d%3d"), "LARA-1001"),
    # 1002 required memberId / 1003 invalid memberId
    (PROGRESS, _edit(PROGRESS, ("memberId",), drop=True), "LARA-1002"),
    (PROGRESS, _edit(PROGRESS, ("memberId",), "12345"), "LARA-1003"),
    # 1004 required customFieldAPIName / 1005 invalid customFieldAPIName
    (SET, _anonymous(SET), "LARA-1004"),
    (CHANGE, {**_anonymous(CHANGE), "customFieldAPIName": "", "customFieldValue": "12345"}, "LARA-1004"),
    (UPDATE, {**_anonymous(UPDATE), "customFieldValue": "12345"}, "LARA-1004"),
    (CHANGE, _edit(CHANGE, ("customFieldAPIName",), "member status"), "LARA-1005"),
    (CHANGE, _edit(CHANGE, ("customFieldAPIName",), "1st_field"), "LARA-1005"),
    (PROGRESS, _edit(PROGRESS, ("customFieldAPIName",), "x" * 101), "LARA-1005"),
    # 1006 statuses list missing
    (SET, _edit(SET, ("statuses",), drop=True), "LARA-1006"),
    (SET, _edit(SET, ("statuses",), None), "LARA-1006"),
    (SET, _edit(SET, ("statuses",), "Membre"), "LARA-1006"),
    # 1007 empty status
    (SET, _edit(SET, ("statuses", 0), None), "LARA-1007"),
    (SET, _edit(SET, ("statuses", 1, "status"), "   "), "LARA-1007"),
    (SET, _edit(SET, ("statuses", 1, "status"), drop=True), "LARA-1007"),
    (UPDATE, _edit(UPDATE, ("status",), drop=True), "LARA-1007"),
    (CHANGE, _edit(CHANGE, ("status",), {}), "LARA-1007"),
    (CHANGE, _edit(CHANGE, ("status", "status"), 1), "LARA-1007"),
    # 1008 invalid status entry id
    (UPDATE, _edit(UPDATE, ("entryId",), drop=True), "LARA-1008"),
    (UPDATE, _edit(UPDATE, ("entryId",), "entry-17"), "LARA-1008"),
    (UPDATE, _edit(UPDATE, ("status", "entryId"), "uprlbtvuqNuwmncYPu1ljg%3d%3d"), "LARA-1008"),
    (LISTED, _edit(LISTED, ("statuses", 0, "entryId"), "uprlbtvuqNuwmncYPu1ljg%3d"), "LARA-1008"),
    # 1009 invalid user
    (SET, _edit(SET, ("userId",), "jean.tremblay"), "LARA-1009"),
    (LISTED, _edit(LISTED, ("statuses", 0, "userId"), "CVYG8nO+51YLthTCoxBcY"), "LARA-1009"),
    (CHANGE, {**_anonymous(CHANGE), "customFieldAPIName": "member_status"}, "LARA-1009"),
    (
        CHANGE,
        {**_anonymous(CHANGE), "customFieldAPIName": "member_status", "customFieldValue": 12345},
        "LARA-1009",
    ),
    # 1010 endDate before startDate
    (UPDATE, _edit(UPDATE, ("status", "endDate"), "2018-02-08T15:02:45.72"), "LARA-1010"),
    (SET, _edit(SET, ("statuses", 0, "endDate"), "2017-12-31T00:00:00"), "LARA-1010"),
    # enums
    (CYCLE, _edit(CYCLE, ("name", "texts", 0, "languageId"), 0), "SCHEMA-ENUM"),
    (CYCLE, _edit(CYCLE, ("name", "texts", 1, "languageId"), 5), "SCHEMA-ENUM"),
    (CYCLE, _edit(CYCLE, ("name", "texts", 0, "languageId"), True), "SCHEMA-TYPE"),
    (PERIOD, _edit(PERIOD, ("durationUnit",), 5), "SCHEMA-ENUM"),
    (PERIOD, _edit(PERIOD, ("durationUnit",), -1), "SCHEMA-ENUM"),
    (PERIOD, _edit(PERIOD, ("durationUnit",), 3.0), "SCHEMA-TYPE"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "type"), 0), "SCHEMA-ENUM"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "type"), 4), "SCHEMA-ENUM"),
    # limits and types
    (PERIOD, _edit(PERIOD, ("duration",), 0), "SCHEMA-MINIMUM"),
    (PERIOD, _edit(PERIOD, ("duration",), 1.5), "SCHEMA-TYPE"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "targetValue"), -0.5), "SCHEMA-MINIMUM"),
    (PROGRESS, _edit(PROGRESS, ("requiredCredits",), -1), "SCHEMA-MINIMUM"),
    (PROGRESS, _edit(PROGRESS, ("exemptedCredits",), "8.0"), "SCHEMA-TYPE"),
    (CYCLE, _edit(CYCLE, ("isActive",), "true"), "SCHEMA-TYPE"),
    (CYCLE, _edit(CYCLE, ("name", "texts"), drop=True), "SCHEMA-REQUIRED"),
    (CYCLE, _edit(CYCLE, ("name", "texts", 0, "text"), drop=True), "SCHEMA-REQUIRED"),
    (PERIOD, _edit(PERIOD, ("requirements", 0, "type"), drop=True), "SCHEMA-REQUIRED"),
    (UPDATE, _edit(UPDATE, ("status", "isActiveMember"), "oui"), "SCHEMA-TYPE"),
    # dates
    (CHANGE, _edit(CHANGE, ("status", "startDate"), drop=True), "SCHEMA-REQUIRED"),
    (CHANGE, _edit(CHANGE, ("status", "startDate"), "2024-06-01"), "SCHEMA-FORMAT"),
    (CHANGE, _edit(CHANGE, ("status", "startDate"), "01/06/2024 00:00"), "SCHEMA-FORMAT"),
    (CHANGE, _edit(CHANGE, ("status", "endDate"), "2024-13-01T00:00:00"), "SCHEMA-FORMAT"),
    (PERIOD, _edit(PERIOD, ("startDate",), 1680307200), "SCHEMA-TYPE"),
]


class TestLaraContract(ContractSuite):
    rules = RULES
    schema_file = None

    def valid_documents(self) -> list[tuple[str | None, Any]]:
        generated: list[tuple[str | None, Any]] = list(valid_documents(random.Random(4)))
        # overlapping ranges: no seed rule forbids them (concurrent statuses)
        overlapping = [
            (_type(SET), _edit(SET, ("statuses", 0, "endDate"), "2020-01-01T00:00:01")),
            (_type(SET), _edit(SET, ("statuses", 0, "endDate"), None)),
        ]
        return [*super().valid_documents(), *generated, *overlapping]

    def invalid_documents(self) -> list[tuple[str | None, Any, str]]:
        return [(_type(name), doc, code) for name, doc, code in INVALID]

    def test_every_seed_error_code_is_exercised(self) -> None:
        codes = {code for _, _, code in INVALID}
        assert {f"LARA-{n}" for n in range(1000, 1011)} <= codes

    def test_every_seed_record_type_has_a_sample(self) -> None:
        assert {s.event_type for s in RULES.samples()} == set(RULES.event_types)

    @pytest.mark.parametrize("name", [CYCLE, PERIOD, PROGRESS, SET, LISTED, UPDATE, CHANGE])
    def test_mutations_end_in_acceptance_or_a_record_error(self, name: str) -> None:
        for what, mutated in mutations(_sample(name)):
            try:
                self.process(_type(name), mutated)
            except RecordError as err:
                assert err.code and err.stage in {"decode", "validate"}, what
