"""Deterministic Lära traffic for integration tests and the benchmark, and the reference it must fold to.

Everything is driven by the ``random.Random`` passed in: one seed is one exact stream. :func:`member_history`
writes what the LMS would send over years: cycles and their periods (a period re-sent with a new target),
each member's full status set, then status changes and entry updates in time order, credit progress per cycle,
plus what production adds: concurrent statuses (a change that opens a range inside an earlier one, so ranges
overlap), broken records labelled with the error code stage one must answer, and redeliveries.

The reference is the generator's own ground truth, kept while it writes the records (the timeline it meant,
the last progress and period versions it sent), not a replay of the folds: :func:`reference_timelines` and
:func:`reference_compliance` are what the tables must hold once the stream is consumed.
"""

from __future__ import annotations

import base64
import copy
import random
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson

from app.core.clock import iso
from app.core.records import EVENT_TYPE_HEADER, Headers, RawRecord
from app.core.traffic import (
    Document,
    Observed,
    Oracle,
    Traffic,
    TrafficRecord,
    TrafficSource,
    Verdict,
    wrong_answers,
)
from app.domains.lara.enrich import period_end
from app.domains.lara.models import (
    CYCLE,
    MEMBER_STATUS_CHANGE,
    MEMBER_STATUS_UPDATE,
    MEMBER_STATUSES,
    PERIOD,
    USER_PROGRESS,
)
from app.domains.lara.state import COMPLIANCE_TOPIC, CYCLES_FEED, IDENTITIES_FEED, STATUSES_FEED
from app.domains.lara.views import COMPLIANCE_PATH, TIMELINE_PATH

ACCEPT = "accept"

#: Status names the generator uses, with the activity the seed's rule gives them when isActiveMember is null
#: (written out here, not computed by the code under test).
STATUS_NAMES: dict[str, bool] = {
    "Membre": True,
    "1ère inscription": True,
    " MEMBRE ": True,
    "member": True,
    "Inscription": True,
    "Temporaire": True,
    "Limitation du droit d'exercice": True,
    "Suspension du droit d'exercice": True,
    "Autorisation spéciale": True,
    "Inactif": False,
    "Retraité": False,
    "Radié": False,
    "Non-membre": False,
}
CUSTOM_FIELD = "numero_membre"


def new_id(rng: random.Random, *, encoded: bool | None = None) -> str:
    """A Lära id: base64 of 16 bytes, bare and unpadded or URL-encoded with padding (both seed forms)."""
    text = base64.b64encode(rng.randbytes(16)).decode()
    if encoded is None:
        encoded = rng.random() < 0.5
    if not encoded:
        return text.rstrip("=")
    return re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), quote(text, safe=""))


def _lara_time(at: datetime) -> str:
    """The seed's form: no offset, hundredths of seconds only when there are some."""
    text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    hundredths = at.microsecond // 10_000
    return f"{text}.{hundredths:02d}" if hundredths else text


# ---- single documents --------------------------------------------------------------------------------------


def valid_cycle(rng: random.Random, cycle_id: str | None = None, *, year: int = 2023) -> dict[str, Any]:
    texts = [{"text": f"Formation continue obligatoire {year}-{year + 2}", "languageId": 1}]
    if rng.random() < 0.7:
        texts.append({"text": f"Mandatory continuing education {year}-{year + 2}", "languageId": 2})
    if rng.random() < 0.3:
        texts.append({"text": f"Formación continua obligatoria {year}-{year + 2}", "languageId": 4})
    return {
        "cycleId": cycle_id or new_id(rng, encoded=False),
        "adminName": f"FC-{year}-{year + 2} Règlement sur la formation continue",
        "name": {"texts": texts},
        "ruleId": new_id(rng, encoded=False),
        "isActive": True,
        "isDeleted": False,
    }


def valid_period(
    rng: random.Random,
    cycle_id: str,
    *,
    period_id: str | None = None,
    start: datetime = datetime(2023, 4, 1, tzinfo=UTC),
    duration: int = 2,
    unit: int = 4,
    target: float = 40.0,
) -> dict[str, Any]:
    period_id = period_id or new_id(rng, encoded=False)
    requirement_id = new_id(rng, encoded=False)
    requirements = [
        {
            "id": requirement_id,
            "cyclePeriodId": period_id,
            "type": 1,
            "targetValue": target,
            "parentId": None,
            "ruleId": new_id(rng, encoded=False),
            "providerId": None,
        },
        {
            "id": new_id(rng, encoded=False),
            "cyclePeriodId": period_id,
            "type": rng.choice((2, 3)),
            "targetValue": float(rng.randrange(1, 5)),
            "parentId": requirement_id,
            "ruleId": None,
            "providerId": new_id(rng, encoded=False),
        },
    ]
    return {
        "cyclePeriodId": period_id,
        "cycleId": cycle_id,
        "adminName": f"Période {start.year}-{start.year + duration}",
        "startDate": _lara_time(start),
        "duration": duration,
        "durationUnit": unit,
        "isRequirementsShown": rng.random() < 0.5,
        "ruleId": new_id(rng, encoded=False),
        "isUserStatement": rng.random() < 0.5,
        "isActive": True,
        "isDeleted": False,
        "requirements": requirements,
    }


def valid_progress(
    rng: random.Random,
    cycle_id: str,
    member_id: str,
    *,
    required: float | None = 40.0,
    completed: float = 22.0,
    exempted: float = 8.0,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": cycle_id,
        "memberId": member_id,
        "completedCredits": completed,
        "exemptedCredits": exempted,
        "providerCredits": round(completed * rng.uniform(0.5, 1.0), 1),
    }
    if required is not None:
        doc["requiredCredits"] = required
    return doc


def _range(
    name: str,
    active: bool | None,
    start: datetime,
    end: datetime | None,
    entry_id: str | None = None,
    *,
    open_end: str | None = None,
) -> dict[str, Any]:
    """A status range as Lära sends it; an open range's end is ``open_end``: the seed allows "" or null."""
    out: dict[str, Any] = {} if entry_id is None else {"entryId": entry_id}
    out.update(
        status=name,
        isActiveMember=active,
        startDate=_lara_time(start),
        endDate=_lara_time(end) if end is not None else open_end,
    )
    return out


def user_fields(user: str, *, linked_to: str | None = None) -> dict[str, Any]:
    """How a record names ``user``: a member key ``numero_membre:<value>`` is named by the custom field only
    (or, ``linked_to``, with that user id too: the record that links them); a user id comes with its own custom
    field too, as in the seed (the id wins). A user's custom value has six digits, a custom-only member's
    five, so the two never name one custom field."""
    if user.startswith(CUSTOM_FIELD + ":"):
        named = {"customFieldAPIName": CUSTOM_FIELD, "customFieldValue": user.split(":", 1)[1]}
        return {"userId": linked_to, **named} if linked_to else named
    return {
        "userId": user,
        "customFieldAPIName": CUSTOM_FIELD,
        "customFieldValue": f"9{zlib.crc32(user.encode()) % 10**5:05d}",
    }


def valid_member_statuses(rng: random.Random, user: str | None = None) -> dict[str, Any]:
    user = user or new_id(rng, encoded=True)
    start = datetime(2018, 2, 8, 15, 2, 45, 730000, tzinfo=UTC)
    middle = datetime(2020, 1, 1, tzinfo=UTC)
    return {
        **user_fields(user),
        "statuses": [
            _range("1ère inscription", None, start, middle, new_id(rng, encoded=True)),
            _range("Membre", True, middle, None, new_id(rng, encoded=True)),
        ],
    }


def valid_status_update(rng: random.Random, user: str | None = None) -> dict[str, Any]:
    user = user or new_id(rng, encoded=True)
    start = datetime(2018, 2, 8, 15, 2, 45, 730000, tzinfo=UTC)
    return {
        **user_fields(user),
        "entryId": new_id(rng, encoded=True),
        "status": _range("Membre", True, start, start + timedelta(days=rng.randrange(30, 700))),
    }


def valid_status_change(rng: random.Random, user: str | None = None) -> dict[str, Any]:
    user = user or new_id(rng, encoded=True)
    start = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(days=rng.randrange(200))
    return {**user_fields(user), "status": _range(rng.choice(list(STATUS_NAMES)), None, start, None)}


def valid_documents(rng: random.Random) -> list[Document]:
    """One realistic accepted document of each record type."""
    cycle = valid_cycle(rng)
    user = new_id(rng, encoded=True)
    return [
        (CYCLE, cycle),
        (PERIOD, valid_period(rng, cycle["cycleId"])),
        (USER_PROGRESS, valid_progress(rng, cycle["cycleId"], user)),
        (MEMBER_STATUSES, valid_member_statuses(rng, user)),
        (MEMBER_STATUS_UPDATE, valid_status_update(rng, user)),
        (MEMBER_STATUS_CHANGE, valid_status_change(rng, f"{CUSTOM_FIELD}:{rng.randrange(10**5):05d}")),
    ]


# ---- broken documents --------------------------------------------------------------------------------------


def invalid_variants(rng: random.Random) -> list[tuple[str, str | None, bytes, str]]:
    """Broken records, one or more per error code: (label, event type, raw bytes, the code stage one must
    answer). Built from fresh valid documents, so each breaks exactly one rule."""
    docs = dict(valid_documents(rng))

    def edit(event_type: str, change: Callable[[dict[str, Any]], Any]) -> bytes:
        doc = copy.deepcopy(docs[event_type])
        change(doc)
        return orjson.dumps(doc)

    def drop(*path: str | int) -> Callable[[dict[str, Any]], Any]:
        def go(doc: dict[str, Any]) -> None:
            node: Any = doc
            for p in path[:-1]:
                node = node[p]
            del node[path[-1]]

        return go

    def put(value: Any, *path: str | int) -> Callable[[dict[str, Any]], Any]:
        def go(doc: dict[str, Any]) -> None:
            node: Any = doc
            for p in path[:-1]:
                node = node[p]
            node[path[-1]] = value

        return go

    def anonymous(doc: dict[str, Any]) -> None:
        for f in ("userId", "customFieldAPIName", "customFieldValue"):
            doc.pop(f, None)

    def by_custom_field_only(value: Any) -> Callable[[dict[str, Any]], Any]:
        def go(doc: dict[str, Any]) -> None:
            anonymous(doc)
            doc.update(customFieldAPIName=CUSTOM_FIELD, customFieldValue=value)

        return go

    def swap_dates(doc: dict[str, Any]) -> None:
        s = doc["status"]
        s["startDate"], s["endDate"] = s["endDate"], s["startDate"]

    def duplicate_entry(doc: dict[str, Any]) -> None:
        doc["statuses"][1]["entryId"] = doc["statuses"][0]["entryId"]

    ok = orjson.dumps(docs[CYCLE])
    return [
        ("no-type-header", None, ok, "LARA-UNKNOWN-TYPE"),
        ("unknown-type", "cycle_deleted", ok, "LARA-UNKNOWN-TYPE"),
        ("empty", CYCLE, b"", "DECODE-EMPTY"),
        ("truncated", CYCLE, ok[: rng.randrange(5, 40)], "DECODE-JSON"),
        ("not-utf8", CYCLE, b"\xff" + ok, "DECODE-UTF8"),
        ("array", CYCLE, b"[" + ok + b"]", "DECODE-NOT-OBJECT"),
        ("cycle-without-id", CYCLE, edit(CYCLE, drop("cycleId")), "LARA-1000"),
        ("progress-without-cycle-id", USER_PROGRESS, edit(USER_PROGRESS, drop("id")), "LARA-1000"),
        ("period-without-period-id", PERIOD, edit(PERIOD, drop("cyclePeriodId")), "LARA-1000"),
        ("cycle-id-too-short", CYCLE, edit(CYCLE, put("vBW5xMw1VQ2A8DFa", "cycleId")), "LARA-1001"),
        ("cycle-id-number", CYCLE, edit(CYCLE, put(12345, "cycleId")), "LARA-1001"),
        ("progress-id-bad-char", USER_PROGRESS, edit(USER_PROGRESS, put("vBW5xMw1VQ2A8DFaNy2!zA", "id")), "LARA-1001"),
        ("requirement-id-inner-space", PERIOD, edit(PERIOD, put("vBW5xMw1 Q2A8DFaNy22zA", "requirements", 0, "id")), "LARA-1001"),
        ("progress-without-member", USER_PROGRESS, edit(USER_PROGRESS, drop("memberId")), "LARA-1002"),
        ("member-id-not-base64", USER_PROGRESS, edit(USER_PROGRESS, put("jean.tremblay@ordre.qc.ca", "memberId")), "LARA-1003"),
        ("nobody-named", MEMBER_STATUSES, edit(MEMBER_STATUSES, anonymous), "LARA-1004"),
        ("blank-custom-field", MEMBER_STATUS_CHANGE, edit(MEMBER_STATUS_CHANGE, put("  ", "customFieldAPIName")), "LARA-1004"),
        ("custom-field-with-space", MEMBER_STATUS_CHANGE, edit(MEMBER_STATUS_CHANGE, put("numero membre", "customFieldAPIName")), "LARA-1005"),
        ("progress-custom-field-dash", USER_PROGRESS, edit(USER_PROGRESS, put("member-status", "customFieldAPIName")), "LARA-1005"),
        ("no-statuses", MEMBER_STATUSES, edit(MEMBER_STATUSES, drop("statuses")), "LARA-1006"),
        ("statuses-object", MEMBER_STATUSES, edit(MEMBER_STATUSES, put({}, "statuses")), "LARA-1006"),
        ("no-status", MEMBER_STATUS_CHANGE, edit(MEMBER_STATUS_CHANGE, drop("status")), "LARA-1007"),
        ("null-status", MEMBER_STATUS_UPDATE, edit(MEMBER_STATUS_UPDATE, put(None, "status")), "LARA-1007"),
        ("blank-status-name", MEMBER_STATUSES, edit(MEMBER_STATUSES, put(" ", "statuses", 1, "status")), "LARA-1007"),
        ("update-without-entry", MEMBER_STATUS_UPDATE, edit(MEMBER_STATUS_UPDATE, drop("entryId")), "LARA-1008"),
        ("entry-id-bad", MEMBER_STATUSES, edit(MEMBER_STATUSES, put("entry-1", "statuses", 0, "entryId")), "LARA-1008"),
        ("entry-id-twice", MEMBER_STATUSES, edit(MEMBER_STATUSES, duplicate_entry), "LARA-1008"),
        ("user-id-bad", MEMBER_STATUS_UPDATE, edit(MEMBER_STATUS_UPDATE, put("12345", "userId")), "LARA-1009"),
        ("custom-field-no-value", MEMBER_STATUS_CHANGE, edit(MEMBER_STATUS_CHANGE, by_custom_field_only("")), "LARA-1009"),
        ("end-before-start", MEMBER_STATUS_UPDATE, edit(MEMBER_STATUS_UPDATE, swap_dates), "LARA-1010"),
        ("language-5", CYCLE, edit(CYCLE, put(5, "name", "texts", 0, "languageId")), "SCHEMA-ENUM"),
        ("duration-unit-5", PERIOD, edit(PERIOD, put(5, "durationUnit")), "SCHEMA-ENUM"),
        ("requirement-type-4", PERIOD, edit(PERIOD, put(4, "requirements", 0, "type")), "SCHEMA-ENUM"),
        ("negative-credits", USER_PROGRESS, edit(USER_PROGRESS, put(-1.0, "completedCredits")), "SCHEMA-MINIMUM"),
        ("credits-as-text", USER_PROGRESS, edit(USER_PROGRESS, put("22", "completedCredits")), "SCHEMA-TYPE"),
        ("start-not-a-date", MEMBER_STATUS_CHANGE, edit(MEMBER_STATUS_CHANGE, put("08/02/2018", "status", "startDate")), "SCHEMA-FORMAT"),
        ("start-missing", MEMBER_STATUS_CHANGE, edit(MEMBER_STATUS_CHANGE, drop("status", "startDate")), "SCHEMA-REQUIRED"),
    ]  # fmt: skip


# ---- a history of many members -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GeneratedRecord:
    """One raw record and what stage one must do with it: ``accept`` or an error code."""

    value: bytes
    key: bytes | None
    event_type: str | None
    expect: str
    label: str
    redelivery: bool = False

    @property
    def headers(self) -> Headers:
        return ((EVENT_TYPE_HEADER, self.event_type.encode()),) if self.event_type is not None else ()

    def raw(self, topic: str = "lara.raw", offset: int = -1) -> RawRecord:
        return RawRecord(value=self.value, key=self.key, headers=self.headers, topic=topic, offset=offset)


@dataclass
class _Truth:
    """What the generator means: per member the timeline, per (member, cycle) the last progress, per cycle
    its live version and the last version of each period."""

    timelines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    progress: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cycles: dict[str, dict[str, Any]] = field(default_factory=dict)
    periods: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    records: list[GeneratedRecord]
    truth: _Truth
    now: datetime


def _entry(
    name: str, active: bool | None, start: datetime, end: datetime | None, entry_id: str | None
) -> dict[str, Any]:
    """A range as the timeline table stores it (see ``state.ordered``)."""
    derived = STATUS_NAMES.get(name)
    return {
        "entryId": entry_id,
        "status": name,
        "isActiveMember": active if active is not None else bool(derived),
        "activeFrom": "given" if active is not None else "status-name",
        "startDate": iso(start),
        "endDate": iso(end) if end is not None else None,
    }


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _record(doc: dict[str, Any], event_type: str, key: str, label: str) -> GeneratedRecord:
    return GeneratedRecord(orjson.dumps(doc), key.encode(), event_type, ACCEPT, label)


class _Member:
    """One member's records, and the timeline they must produce, written side by side.

    A member known by custom field (``key`` ``numero_membre:<value>``) is a Lära user too (``user_id``), which
    their records do not say, except one record at ``link_at`` (a change or update, counted from 0), when it
    comes, that names both: from then on the member is that user. All of a member's raw records share one raw
    key (``key``), so they stay in order."""

    def __init__(self, rng: random.Random, key: str, start: datetime) -> None:
        self.rng = rng
        self.key = key
        custom = key.startswith(CUSTOM_FIELD + ":")
        self.user_id = new_id(rng) if custom else key
        self.link_at = rng.choice((0, 1, 3, None)) if custom else None
        self.written = 0
        self.entries: list[dict[str, Any]] = []
        self.cursor = start
        self.records: list[GeneratedRecord] = []
        self.concurrent = 0

    def _sent(
        self, name: str, active: bool | None, start: datetime, end: datetime | None, entry_id: str | None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The range as sent and as the timeline must store it (dates as they read back from the text)."""
        sent = _range(name, active, start, end, entry_id, open_end=self.rng.choice(("", None)))
        stored = _entry(name, active, _parse(sent["startDate"]), _when(sent["endDate"]), entry_id)
        return sent, stored

    @property
    def linked(self) -> bool:
        return self.link_at is not None and self.written > self.link_at

    @property
    def resolved_key(self) -> str:
        """The member key the tables end with: the user once linked, else the custom field."""
        return self.user_id if self.linked or self.user_id == self.key else self.key

    def _names(self) -> dict[str, Any]:
        """How the next change or update names the member (the link record names the user too)."""
        linking = self.link_at is not None and self.written == self.link_at
        self.written += 1
        return user_fields(self.key, linked_to=self.user_id if linking else None)

    def full_set(self) -> None:
        rng, first = self.rng, self.cursor
        second = first + timedelta(days=rng.randrange(90, 400), hours=rng.randrange(24))
        one, e1 = self._sent("1ère inscription", None, first, second, new_id(rng))
        two, e2 = self._sent("Membre", rng.choice((True, None)), second, None, new_id(rng))
        self.entries = [e1, e2]
        self.cursor = _parse(two["startDate"])
        doc = {**user_fields(self.key), "statuses": [one, two]}
        self.records.append(_record(doc, MEMBER_STATUSES, self.key, "full-set"))

    def change(self) -> None:
        """Close the active range at the new start, open the new range (rarely with an end already)."""
        rng = self.rng
        start = self.cursor + timedelta(days=rng.randrange(5, 60), hours=rng.randrange(24))
        end = start + timedelta(days=rng.randrange(1, 20)) if rng.random() < 0.1 else None
        sent, new = self._sent(
            rng.choice(list(STATUS_NAMES)), rng.choice((None, None, True, False)), start, end, None
        )
        begins = _parse(sent["startDate"])
        self._close_active(begins, new["startDate"])
        self.entries.append(new)
        self.cursor = _when(new["endDate"]) or begins
        self.records.append(
            _record({**self._names(), "status": sent}, MEMBER_STATUS_CHANGE, self.key, "change")
        )

    def update(self) -> bool:
        """Rename an entry of the full set (same dates): never overlaps."""
        targets = [i for i, e in enumerate(self.entries) if e["entryId"] is not None]
        if not targets:
            return False
        i = self.rng.choice(targets)
        old = self.entries[i]
        start, end = _parse(old["startDate"]), _when(old["endDate"])
        name, active = self.rng.choice(list(STATUS_NAMES)), self.rng.choice((None, True, False))
        sent, new = self._sent(name, active, start, end, None)
        self.entries[i] = {**new, "entryId": old["entryId"]}
        doc = {**self._names(), "entryId": old["entryId"], "status": sent}
        self.records.append(_record(doc, MEMBER_STATUS_UPDATE, self.key, "update"))
        return True

    def _close_active(self, begins: datetime, at: str) -> None:
        """The seed's change closes *the* active range: the latest-starting one (then by entry id) that starts
        before ``begins`` and is open or ends after it. Concurrent ranges covering ``begins`` stay open."""
        candidates = [
            i
            for i, e in enumerate(self.entries)
            if _parse(e["startDate"]) < begins and ((end := _when(e["endDate"])) is None or end > begins)
        ]
        if candidates:
            i = max(
                candidates,
                key=lambda i: (_parse(self.entries[i]["startDate"]), self.entries[i]["entryId"] or ""),
            )
            self.entries[i] = {**self.entries[i], "endDate": at}

    def concurrent_change(self) -> None:
        """A change starting inside the member's earliest range, opening a range that overlaps every later one
        (a suspension or a second membership, concurrent with the statuses that follow). Each starts an hour
        after the one before, so no two are the same event."""
        earliest = min(_parse(e["startDate"]) for e in self.entries)
        start = earliest + timedelta(hours=1 + self.concurrent)
        name = self.rng.choice(("Membre", "Suspension du droit d'exercice"))
        sent, new = self._sent(name, self.rng.choice((None, True, False)), start, None, None)
        self._close_active(_parse(sent["startDate"]), new["startDate"])
        self.entries.append(new)
        doc = {**self._names(), "status": sent}
        self.records.append(_record(doc, MEMBER_STATUS_CHANGE, self.key, "concurrent-change"))
        self.concurrent += 1


def _parse(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _period_truth(doc: dict[str, Any]) -> dict[str, Any]:
    start = _parse(doc["startDate"])
    targets = [r["targetValue"] for r in doc["requirements"] if r["type"] == 1]
    return {
        "cyclePeriodId": doc["cyclePeriodId"],
        "adminName": doc["adminName"],
        "startDate": iso(start),
        "endDate": iso(period_end(start, doc["duration"], doc["durationUnit"])),
        "creditTarget": max(targets) if targets else None,
        "isActive": doc["isActive"],
        "isDeleted": doc["isDeleted"],
    }


def member_history(
    rng: random.Random,
    *,
    now: datetime,
    members: int = 100,
    changes: int = 1000,
    cycles: int = 2,
    custom_field_share: float = 0.15,
    concurrent_rate: float = 0.02,
    update_rate: float = 0.15,
    invalid_rate: float = 0.02,
    redelivery_rate: float = 0.02,
) -> History:
    """``changes`` status changes and updates spread over ``members`` members, with their cycles, periods and
    progress, interleaved as the raw topic would receive them (per key in order). Every date is before ``now``
    except the current and next periods, which ``now`` falls in and after."""
    truth = _Truth()
    people: list[_Member] = []
    for _ in range(members):
        key = (
            f"{CUSTOM_FIELD}:{rng.randrange(10**5):05d}" if rng.random() < custom_field_share else new_id(rng)
        )
        person = _Member(rng, key, now - timedelta(days=3650 - rng.randrange(200)))
        person.full_set()
        people.append(person)
    for _ in range(changes):
        person = rng.choice(people)
        roll = rng.random()
        if roll < concurrent_rate:
            person.concurrent_change()
        elif roll < concurrent_rate + update_rate and person.update():
            pass
        else:
            person.change()
    queues: list[list[GeneratedRecord]] = []
    for person in people:
        assert person.cursor < now - timedelta(days=1), "history ran past now: fewer changes per member"
        truth.timelines[person.resolved_key] = sorted(
            person.entries, key=lambda e: (_parse(e["startDate"]), e["entryId"] or "")
        )
        queues.append(person.records)
    queues.extend(_cycles(rng, truth, people, now, cycles))
    records: list[GeneratedRecord] = []
    while any(queues):
        queue = rng.choice([q for q in queues if q])
        records.append(queue.pop(0))
    broken = invalid_variants(rng)
    for _ in range(int(len(records) * invalid_rate)):
        label, event_type, value, code = rng.choice(broken)
        records.insert(rng.randrange(len(records) + 1), GeneratedRecord(value, None, event_type, code, label))
    for _ in range(int(len(records) * redelivery_rate)):
        i = rng.randrange(len(records))
        again = records[i]
        copy_ = GeneratedRecord(again.value, again.key, again.event_type, again.expect, again.label, True)
        records.insert(i + 1, copy_)
    return History(records, truth, now)


def _cycles(
    rng: random.Random, truth: _Truth, people: list[_Member], now: datetime, count: int
) -> list[list[GeneratedRecord]]:
    """Per cycle: its record, three periods (past, current, next; the current one later re-sent with another
    target) and the progress of every member, which names their user id (also for members the status records
    know by custom field), two or three versions each."""
    queues: list[list[GeneratedRecord]] = []
    units = ((2, 4), (24, 3), (104, 2))
    for c in range(count):
        cycle = valid_cycle(rng, year=now.year - 1)
        cycle_id = cycle["cycleId"]
        duration, unit = units[c % len(units)]
        current_start = (now - timedelta(days=rng.randrange(60, 300))).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        span = period_end(current_start, duration, unit) - current_start
        starts = (current_start - span, current_start, current_start + span)
        own: list[GeneratedRecord] = [_record(cycle, CYCLE, cycle_id, "cycle")]
        truth.cycles[cycle_id] = cycle
        for person in people:
            completed = 0.0
            for _ in range(rng.randrange(2, 4)):
                completed += float(rng.randrange(0, 25))
                required = rng.choice((40.0, 40.0, 40.0, None))
                doc = valid_progress(
                    rng,
                    cycle_id,
                    person.user_id,
                    required=required,
                    completed=completed,
                    exempted=rng.choice((0.0, 4.0, 8.0)),
                )
                own.append(_record(doc, USER_PROGRESS, person.user_id, "progress"))
                truth.progress[(person.user_id, cycle_id)] = doc
        # Periods land anywhere in the cycle's stream, before or after the progress they apply to; the
        # current one is re-sent later with another target, and that last version is the truth.
        truth.periods[cycle_id] = {}
        for s in starts:
            target = float(rng.choice((30, 40, 60)))
            period = valid_period(rng, cycle_id, start=s, duration=duration, unit=unit, target=target)
            at = rng.randrange(1, len(own) + 1)
            own.insert(at, _record(period, PERIOD, cycle_id, "period"))
            if s == current_start:
                resent = copy.deepcopy(period)
                resent["requirements"][0]["targetValue"] = float(rng.choice((20, 45)))
                own.insert(
                    rng.randrange(at + 1, len(own) + 1), _record(resent, PERIOD, cycle_id, "period-resent")
                )
                period = resent
            truth.periods[cycle_id][period["cyclePeriodId"]] = _period_truth(period)
        queues.append(own)
    return queues


# ---- the reference -----------------------------------------------------------------------------------------


def reference_timelines(history: History) -> dict[str, list[dict[str, Any]]]:
    """Per member key, the entries the timeline table must hold (``state["entries"]``)."""
    return {k: [dict(e) for e in v] for k, v in history.truth.timelines.items()}


def reference_compliance(history: History, now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Per member key, the snapshot ``lara.compliance`` must end with (``state.compliance_view`` at ``now``,
    the history's ``now`` by default)."""
    at = now or history.now
    truth = history.truth
    out: dict[str, dict[str, Any]] = {}
    members = {*truth.timelines, *(m for m, _ in truth.progress)}
    for key in sorted(members):
        entries = truth.timelines.get(key)
        now_ranges = [
            e
            for e in entries or []
            if (_when(e["startDate"]) or at) <= at and ((end := _when(e["endDate"])) is None or at < end)
        ]
        cycles = []
        for cycle_id in sorted(c for (m, c) in truth.progress if m == key):
            progress = truth.progress[(key, cycle_id)]
            period = next(
                (
                    p
                    for p in truth.periods[cycle_id].values()
                    if (_when(p["startDate"]) or at) <= at < (_when(p["endDate"]) or at)
                ),
                None,
            )
            required = progress.get("requiredCredits")
            source = "user_progress" if required is not None else None
            if required is None and period is not None:
                required, source = period["creditTarget"], "period"
            earned = progress["completedCredits"] + progress["exemptedCredits"]
            cycle = truth.cycles[cycle_id]
            names = {t["languageId"]: t["text"] for t in cycle["name"]["texts"]}
            cycles.append(
                {
                    "cycleId": cycle_id,
                    "cycleName": names.get(1),
                    "cycleLive": True,
                    "currentPeriod": period,
                    "requiredCredits": required,
                    "requirementSource": source,
                    "completedCredits": progress["completedCredits"],
                    "exemptedCredits": progress["exemptedCredits"],
                    "earnedCredits": earned,
                    "remainingCredits": None if required is None else max(0.0, required - earned),
                    "progressPercent": None
                    if required is None
                    else round(min(100.0, 100 * earned / required), 2),
                    "compliant": None if required is None else earned >= required,
                }
            )
        verdicts = [c["compliant"] for c in cycles if c["compliant"] is not None]
        out[key] = {
            "memberKey": key,
            "identity": "unresolved" if ":" in key else "user",
            # no timeline: None; else active while some range covers now and none of them says inactive
            "activeNow": None
            if entries is None
            else bool(now_ranges) and all(e["isActiveMember"] for e in now_ranges),
            "currentStatus": now_ranges[-1] if now_ranges else None,
            "currentStatuses": now_ranges,
            "cycles": cycles,
            "compliant": all(verdicts) if verdicts else None,
        }
    return out


# ---- the traffic protocol (app.core.traffic) -------------------------------------------------------------------
def as_traffic(r: GeneratedRecord) -> TrafficRecord:
    if r.expect == ACCEPT:
        return TrafficRecord(r.value, r.key, r.headers, label=r.label)
    return TrafficRecord.rejected(r.value, r.key, r.expect, r.headers, r.label)


def member_path(template: str, key: str) -> str:
    """Member keys are Lära ids (``/``, ``+``, ``%`` included): one percent-encoded path segment."""
    return template.format(id=quote(key, safe=""))


def _oracle(history: History) -> Oracle:
    def judge(_: Sequence[TrafficRecord], seen: Observed, verdict: Verdict) -> None:
        compliance = reference_compliance(history)
        verdict.expected = len(compliance)
        latest = {r.key: orjson.loads(r.value) if r.value else None for r in seen.read(COMPLIANCE_TOPIC)}
        verdict.processed = sum(1 for k, want in compliance.items() if latest.get(k.encode()) == want)
        if verdict.processed != verdict.expected:
            verdict.lost += verdict.expected - verdict.processed
            verdict.problems.append(
                f"{COMPLIANCE_TOPIC}: {verdict.expected - verdict.processed} unlike the reference"
            )
        wrong = wrong_answers(
            seen, [(member_path(COMPLIANCE_PATH, k), want) for k, want in compliance.items()]
        )
        timelines = [
            (member_path(TIMELINE_PATH, k), {"memberKey": k, "entries": entries})
            for k, entries in reference_timelines(history).items()
        ]
        wrong += wrong_answers(
            seen, timelines, lambda body: {"memberKey": body["memberKey"], "entries": body["entries"]}
        )
        verdict.wrong("lara members", wrong)

    return judge


def _traffic(rng: random.Random, n: int, now: datetime) -> Traffic:
    # ~16 records per member at the generator's own mix (a full set, ten changes or updates, progress for two
    # cycles); the count varies with the draw, so grow the membership until the history holds n, each try from
    # the same seed so the stream stays one function of ``rng``.
    seed = rng.getrandbits(64)
    members = max(5, n // 15)
    while True:
        history = member_history(random.Random(seed), now=now, members=members, changes=10 * members)
        if len(history.records) >= n:
            return Traffic([as_traffic(r) for r in history.records], _oracle(history))
        members += max(1, members // 10)


TRAFFIC = TrafficSource(
    _traffic,
    valid_documents,
    "Lära LMS records (~0.2 KB), stage one + timeline, cycle and compliance folds",
    # Lära has no output topic: the feeds are the only record every accepted event gets, and they carry its
    # eventId (the compliance snapshots name the member, not the event); member records that name a custom
    # field go to the identities feed first
    (IDENTITIES_FEED, STATUSES_FEED, CYCLES_FEED),
)
