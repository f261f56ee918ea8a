"""Deterministic appointment webhooks for integration tests and the benchmark.

Everything is drawn from the ``random.Random`` passed in, so a seed reproduces a stream byte for byte.
:func:`life_cycle` gives one appointment's webhooks in upstream order (request -> accept -> reschedule ->
complete or cancel, ``updatedAt`` strictly increasing); :func:`life_cycles` interleaves N of them;
:func:`shuffle_with_duplicates` reorders and redelivers, as webhooks overtaking each other and retried
deliveries do; :func:`invalid_documents` breaks one rule of the seed per document, labelled with the code and
JSON pointer ``process`` must report; :func:`reference_final_states` says what the ``appointments`` table must
hold after a delivery order, computed from the documents alone.
"""

from __future__ import annotations

import copy
import dataclasses
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.core.clock import iso
from app.core.codecs import encode_json
from app.core.traffic import Observed, Traffic, TrafficRecord, TrafficSource, Verdict, wrong_answers
from app.domains.appointments.rules import ENRICHED_TOPIC
from app.domains.appointments.views import APPOINTMENT_PATH

EPOCH = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

_SUBJECTS = (
    ("subj-mortgage-advice", "Mortgage advice", "Hypotheekadvies"),
    ("subj-pension-review", "Pension review", "Pensioengesprek"),
    ("subj-home-valuation", "Home valuation", "Woningtaxatie"),
    ("subj-business-loan", "Business loan intake", "Intake zakelijke lening"),
)
_OFFICES = (
    ("off-amsterdam-centrum", "Amsterdam Centrum", "1017 CT", "Amsterdam", "Rembrandtplein 41", "NL"),
    ("off-utrecht-station", "Utrecht Station", "3511 CE", "Utrecht", "Stationsplein 12", "NL"),
    ("off-antwerpen-meir", "Antwerpen Meir", "2000", "Antwerpen", "Meir 78", "BE"),
)
_FIRST = ("Sanne", "Daan", "Lotte", "Bram", "Eva", "Ruben", "Noor", "Thijs", "Fleur", "Jesse")
_LAST = ("de Vries", "Jansen", "Bakker", "Visser", "Smit", "Meijer", "Mulder", "Peeters", "Maes", "Claes")
_MEETING_TYPES = ("OFFICE", "ON_LOCATION", "PHONE", "VIDEO")


@dataclass(frozen=True, slots=True)
class Invalid:
    """A document ``process`` must reject with ``code`` at JSON pointer ``path``."""

    label: str
    document: dict[str, Any]
    code: str
    path: str


def _id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}-{uuid.UUID(int=rng.getrandbits(128), version=4)}"


def _tr(value: str, language: str = "en") -> list[dict[str, str]]:
    return [{"value": value, "language": language}]


def _location(rng: random.Random, office: tuple[str, ...]) -> dict[str, Any]:
    _, _, postal, city, street, country = office
    return {
        "postalCode": postal,
        "countryCode": country,
        "geolocation": {
            "latitude": round(rng.uniform(50.8, 53.2), 5),
            "longitude": round(rng.uniform(3.4, 7.1), 5),
        },
        "translations": {"city": _tr(city), "street1": _tr(street)},
    }


def _employee(rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    handle = f"{first}.{last}".lower().replace(" ", "")
    return {
        "id": f"emp-{rng.randrange(16**8):08x}",
        "communicationEmail": f"{handle}@bank.example.com",
        "email": f"{handle}@bank.example.com",
        "externalId": f"HR-{rng.randrange(10**5):05d}",
        "firstName": first,
        "language": rng.choice(("nl", "en", "fr")),
        "lastName": last,
        "onlinePlanning": rng.random() < 0.8,
        "translations": {"function": _tr("Adviser")},
        "availableRoles": [rng.choice(("AGENT", "OFFICE_MANAGER"))],
        "status": "ACTIVE",
        "timeZone": "Europe/Amsterdam",
    }


def _customer(rng: random.Random, created: datetime) -> dict[str, Any]:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    customer: dict[str, Any] = {
        "id": f"cust-{rng.randrange(16**8):08x}",
        "customerNumber": rng.randrange(10**6),
        "firstName": first,
        "lastName": last,
        "language": rng.choice(("nl", "en")),
        "createdAt": iso(created),
    }
    if rng.random() < 0.85:
        customer["email"] = f"{first}.{last}{rng.randrange(100)}@mail.example.org".lower().replace(" ", "")
    if rng.random() < 0.6:
        customer["externalId"] = f"CRM-CUST-{rng.randrange(10**6):06d}"
    return customer


@dataclass(frozen=True, slots=True)
class _Appointment:
    """What stays fixed over one appointment's life: the parts every webhook of it repeats."""

    id: str
    created_at: datetime
    subject: dict[str, Any]
    office: dict[str, Any]
    employee: dict[str, Any]
    customer: dict[str, Any] | None
    meeting_type: str


def _appointment(rng: random.Random, appointment_id: str, created_at: datetime) -> _Appointment:
    subject_id, name_en, name_nl = rng.choice(_SUBJECTS)
    office = rng.choice(_OFFICES)
    return _Appointment(
        id=appointment_id,
        created_at=created_at,
        subject={
            "id": subject_id,
            "externalId": f"CRM-{subject_id.upper()}",
            "enabledForCustomerUse": True,
            "enabledForInternalUse": True,
            "order": rng.randrange(10),
            "translations": {"name": [*_tr(name_en), *_tr(name_nl, "nl")]},
        },
        office={
            "id": office[0],
            "active": True,
            "externalId": f"BR-{rng.randrange(10**4):04d}",
            "timeZone": "Europe/Amsterdam",
            "location": _location(rng, office),
            "translations": {"name": _tr(office[1])},
        },
        employee=_employee(rng),
        customer=_customer(rng, created_at) if rng.random() < 0.9 else None,
        meeting_type=rng.choice(_MEETING_TYPES),
    )


def webhook(
    rng: random.Random,
    appt: _Appointment,
    *,
    event_type: str,
    status: str,
    updated_at: datetime,
    start: datetime,
    previous: tuple[str, datetime] | None,
) -> dict[str, Any]:
    """One webhook of ``appt``: its state after ``event_type``; ``previous`` is (status, start) before it."""
    participants: list[dict[str, Any]] = [
        {
            "role": "PRIMARY",
            "type": "EMPLOYEE",
            "token": f"ptk-{rng.randrange(16**10):010x}",
            "videoUrl": f"https://meet.example.com/j/{appt.id}?role=host",
            "createdAt": iso(appt.created_at),
            "employee": appt.employee,
        }
    ]
    if appt.customer is not None:
        participants.append(
            {
                "role": "PRIMARY",
                "type": "CUSTOMER",
                "token": f"ptk-{rng.randrange(16**10):010x}",
                "videoUrl": f"https://meet.example.com/j/{appt.id}?role=guest",
                "createdAt": iso(appt.created_at),
                "customer": appt.customer,
            }
        )
    by_customer = event_type in {"CREATE_REQUEST", "RESCHEDULE_REQUEST"} and appt.customer is not None
    appointment = {
        "id": appt.id,
        "subject": appt.subject,
        "office": appt.office,
        "participants": participants,
        "answers": [
            {
                "id": f"ans-{rng.randrange(16**8):08x}",
                "question": {
                    "id": "q-topic",
                    "order": 0,
                    "translations": {"label": _tr("What would you like to discuss?")},
                },
                "answerType": "SUBJECT_QUESTIONNAIRE",
                "value": "I would like to know my options.",
            }
        ],
        "meetingType": appt.meeting_type,
        "externalId": f"CRM-APT-{appt.id[-6:]}",
        "trailingBufferTime": 15,
        "metadata": {"campaign": "spring-2024"},
        "createdAt": iso(appt.created_at),
        "createdByType": "CUSTOMER" if appt.customer is not None else "EMPLOYEE",
        "createdFrom": "PLUGIN" if appt.customer is not None else "BACKOFFICE_APP",
        "updatedAt": iso(updated_at),
        "updatedByType": "CUSTOMER" if by_customer else "EMPLOYEE",
        "updatedFrom": "PLUGIN" if by_customer else "BACKOFFICE_APP",
        "status": status,
        "start": iso(start),
        "end": iso(start + timedelta(minutes=45)),
    }
    previous_doc = None
    if previous is not None:
        previous_status, previous_start = previous
        previous_doc = {
            "subject": {"id": appt.subject["id"]},
            "office": {"id": appt.office["id"]},
            "status": previous_status,
            "start": iso(previous_start),
            "end": iso(previous_start + timedelta(minutes=45)),
        }
    return {
        "id": _id(rng, "wh-evt"),
        "correlationId": _id(rng, "corr"),
        "webhookConfigurationId": "whc-switchyard",
        "version": "1",
        "entity": "Appointment",
        "data": {
            "eventType": event_type,
            "message": f"Appointment {event_type.lower().replace('_', ' ')}",
            "appointment": appointment,
            "previousAppointment": previous_doc,
        },
    }


def life_cycle(rng: random.Random, appointment_id: str, created_at: datetime) -> list[dict[str, Any]]:
    """Request -> accept -> reschedule -> complete (or cancel), ``updatedAt`` strictly increasing."""
    appt = _appointment(rng, appointment_id, created_at)
    start = created_at + timedelta(days=rng.randrange(2, 21), hours=rng.randrange(8))
    moved = start + timedelta(days=rng.choice((-1, 1, 2, 7)), minutes=rng.choice((0, 30, 90)))
    ending = ("COMPLETE", "COMPLETED") if rng.random() < 0.75 else ("CANCEL", "CANCELLED")
    steps: list[tuple[str, str, datetime, tuple[str, datetime] | None]] = [
        ("CREATE_REQUEST", "INCOMING_REQUEST", start, None),
        ("ACCEPT", "ACCEPTED", start, ("INCOMING_REQUEST", start)),
        ("RESCHEDULE", "ACCEPTED", moved, ("ACCEPTED", start)),
        (*ending, moved, ("ACCEPTED", moved)),
    ]
    docs: list[dict[str, Any]] = []
    clock = created_at
    for event_type, status, at, previous in steps:
        docs.append(
            webhook(
                rng, appt, event_type=event_type, status=status, updated_at=clock, start=at, previous=previous
            )
        )
        clock += timedelta(minutes=rng.randrange(1, 600), seconds=rng.randrange(1, 60))
    return docs


def updated_at_of(doc: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(doc["data"]["appointment"]["updatedAt"])


def life_cycles(rng: random.Random, n: int, *, start: datetime = EPOCH) -> list[dict[str, Any]]:
    """N appointments' life cycles merged in upstream order (by ``updatedAt``)."""
    docs: list[dict[str, Any]] = []
    for i in range(n):
        created = start + timedelta(minutes=7 * i + rng.randrange(7))
        docs.extend(life_cycle(rng, _id(rng, "apt"), created))
    return sorted(docs, key=updated_at_of)


def shuffle_with_duplicates(
    rng: random.Random, docs: Sequence[dict[str, Any]], *, duplicate_rate: float = 0.1
) -> list[dict[str, Any]]:
    """``docs`` in a random order, with about ``duplicate_rate`` of them delivered twice (same event id)."""
    out = [copy.deepcopy(d) for d in docs]
    out.extend(copy.deepcopy(d) for d in docs if rng.random() < duplicate_rate)
    rng.shuffle(out)
    return out


def reference_final_states(delivered: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per appointment id, what the table must hold after ``delivered`` in that order: the document with the
    greatest ``updatedAt`` (among equals the last delivered, as the table applies equal ones), and how many
    distinct events were applied or judged stale."""
    out: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    for doc in delivered:
        if doc["id"] in seen:
            continue
        seen.add(doc["id"])
        appointment = doc["data"]["appointment"]
        when = updated_at_of(doc)
        current = out.get(appointment["id"])
        if current is not None and when < current["_when"]:
            current["stale_count"] += 1
            continue
        out[appointment["id"]] = {
            "_when": when,
            "status": appointment["status"],
            "event_id": doc["id"],
            "updated_at": iso(when),
            "start": iso(datetime.fromisoformat(appointment["start"])),
            "applied_count": (current or {}).get("applied_count", 0) + 1,
            "stale_count": (current or {}).get("stale_count", 0),
        }
    return {k: {f: v for f, v in state.items() if f != "_when"} for k, state in out.items()}


# ---- invalid documents --------------------------------------------------------------------------------------

Path = tuple[str | int, ...]
_APPT: Path = ("data", "appointment")
_PREV: Path = ("data", "previousAppointment")
_EMPLOYEE: Path = (*_APPT, "participants", 0, "employee")
_CUSTOMER: Path = (*_APPT, "participants", 1, "customer")


def _pointer(path: Path) -> str:
    return "/" + "/".join(map(str, path))


def _node(doc: Any, path: Path) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def _setter(value: Any) -> Callable[[Any, str | int], None]:
    def apply(parent: Any, last: str | int) -> None:
        parent[last] = value

    return apply


def _delete(parent: Any, last: str | int) -> None:
    del parent[last]


def _add_extra(parent: Any, last: str | int) -> None:
    parent[last]["unexpectedField"] = "x"


def base_document(rng: random.Random) -> dict[str, Any]:
    """A valid webhook with every closed object present, the base each invalid document breaks once."""
    appt = _appointment(rng, _id(rng, "apt"), EPOCH)
    if appt.customer is None:
        appt = dataclasses.replace(appt, customer=_customer(rng, EPOCH))
    start = EPOCH + timedelta(days=3)
    doc = webhook(
        rng,
        appt,
        event_type="RESCHEDULE",
        status="ACCEPTED",
        updated_at=EPOCH + timedelta(hours=5),
        start=start,
        previous=("ACCEPTED", start - timedelta(days=1)),
    )
    office = _OFFICES[0]
    a = doc["data"]["appointment"]
    a["subject"]["subjectGroup"] = {"id": "sg-housing", "order": 1, "translations": {"name": _tr("Housing")}}
    a["participants"][1]["customer"]["externalId"] = "CRM-CUST-000001"
    a["participants"][1]["customer"]["email"] = "lotte.jansen@mail.example.org"
    a["participants"][1]["customer"]["location"] = _location(rng, office)
    a["participants"][0]["videoTestUrl"] = "https://meet.example.com/test"
    a["answers"][0]["form"] = {"id": "form-intake"}
    a["location"] = _location(rng, office)
    a["listing"] = {
        "id": "lst-keizersgracht-212",
        "externalId": "FUNDA-88123456",
        "location": _location(rng, office),
        "translations": {"name": _tr("Keizersgracht 212")},
    }
    a["leadSegment"] = {"id": 7, "code": "FIRST-TIME-BUYER"}
    a["meetingRoom"] = {"id": "room-3a", "name": "Meeting room 3A"}
    prev = doc["data"]["previousAppointment"]
    prev.update(
        {
            "location": _location(rng, office),
            "listing": {"id": "lst-keizersgracht-212"},
            "leadSegment": {"id": "7"},
        }
    )
    prev["externalId"] = a["externalId"]
    return doc


#: (label, path, mutation, code): each breaks one rule the seed states, or one Switchyard adds (see models.py).
_BREAKS: list[tuple[str, Path, Callable[[Any, str | int], None], str]] = [
    # enums
    *[
        (f"enum {_pointer(p)}", p, _setter("NOT_A_VALUE"), "SCHEMA-ENUM")
        for p in (
            ("entity",),
            ("data", "eventType"),
            (*_APPT, "status"),
            (*_APPT, "meetingType"),
            (*_APPT, "createdByType"),
            (*_APPT, "createdFrom"),
            (*_APPT, "updatedByType"),
            (*_APPT, "updatedFrom"),
            (*_APPT, "participants", 0, "role"),
            (*_APPT, "participants", 1, "type"),
            (*_EMPLOYEE, "availableRoles", 0),
            (*_EMPLOYEE, "status"),
            (*_APPT, "answers", 0, "answerType"),
            (*_PREV, "status"),
        )
    ],
    # length limits
    *[
        (f"max length {_pointer(p)}", p, _setter("x" * (limit + 1)), "SCHEMA-MAX-LENGTH")
        for p, limit in (
            ((*_APPT, "subject", "externalId"), 255),
            ((*_APPT, "office", "externalId"), 255),
            ((*_APPT, "listing", "externalId"), 255),
            ((*_APPT, "externalId"), 255),
            ((*_PREV, "externalId"), 255),
            ((*_APPT, "participants", 0, "videoUrl"), 2000),
            ((*_APPT, "participants", 0, "videoTestUrl"), 2000),
            ((*_EMPLOYEE, "communicationEmail"), 320),
            ((*_EMPLOYEE, "email"), 320),
            ((*_EMPLOYEE, "externalId"), 255),
            ((*_EMPLOYEE, "language"), 2),
            ((*_CUSTOMER, "externalId"), 255),
            ((*_CUSTOMER, "email"), 320),
            ((*_CUSTOMER, "language"), 2),
            ((*_APPT, "office", "location", "countryCode"), 2),
            ((*_APPT, "location", "countryCode"), 2),
            ((*_APPT, "listing", "location", "countryCode"), 2),
            ((*_CUSTOMER, "location", "countryCode"), 2),
            ((*_PREV, "location", "countryCode"), 2),
        )
    ],
    *[
        (f"min length {_pointer(p)}", p, _setter("N"), "SCHEMA-MIN-LENGTH")
        for p in ((*_APPT, "office", "location", "countryCode"), (*_APPT, "location", "countryCode"))
    ],
    # minimums
    *[
        (f"minimum {_pointer(p)}", p, _setter(-1), "SCHEMA-MINIMUM")
        for p in ((*_APPT, "subject", "order"), (*_CUSTOMER, "customerNumber"))
    ],
    # required
    *[
        (f"required {_pointer(p)}", p, _delete, "SCHEMA-REQUIRED")
        for p in (
            ("id",),
            ("entity",),
            ("data",),
            ("data", "eventType"),
            (*_APPT,),
            (*_PREV,),
            (*_APPT, "id"),
            (*_APPT, "meetingType"),
            (*_APPT, "status"),
            (*_APPT, "createdByType"),
            (*_APPT, "createdFrom"),
            (*_APPT, "updatedByType"),
            (*_APPT, "updatedFrom"),
            (*_APPT, "createdAt"),
            (*_APPT, "updatedAt"),
            (*_APPT, "start"),
            (*_APPT, "end"),
            (*_APPT, "participants", 0, "role"),
            (*_APPT, "participants", 0, "type"),
            (*_EMPLOYEE, "status"),
            (*_APPT, "answers", 0, "answerType"),
            (*_PREV, "status"),
        )
    ],
    # additional properties where the seed forbids them
    *[
        (f"extra property in {_pointer(p)}", p, _add_extra, "SCHEMA-ADDITIONAL-PROPERTY")
        for p in (
            (*_APPT, "subject"),
            (*_APPT, "subject", "subjectGroup"),
            (*_APPT, "subject", "subjectGroup", "translations"),
            (*_APPT, "subject", "translations"),
            (*_APPT, "office"),
            (*_APPT, "office", "location"),
            (*_APPT, "office", "location", "geolocation"),
            (*_APPT, "office", "location", "translations"),
            (*_APPT, "office", "translations"),
            _EMPLOYEE,
            (*_EMPLOYEE, "translations"),
            _CUSTOMER,
            (*_CUSTOMER, "location"),
            (*_APPT, "answers", 0, "form"),
            (*_APPT, "answers", 0, "question"),
            (*_APPT, "answers", 0, "question", "translations"),
            (*_APPT, "location"),
            (*_APPT, "listing"),
            (*_APPT, "listing", "location"),
            (*_APPT, "listing", "translations"),
            (*_APPT, "leadSegment"),
            (*_APPT, "meetingRoom"),
            (*_PREV, "subject"),
            (*_PREV, "office"),
            (*_PREV, "location"),
            (*_PREV, "listing"),
            (*_PREV, "leadSegment"),
        )
    ],
    # formats and types
    ("not a date-time", (*_APPT, "start"), _setter("next tuesday"), "SCHEMA-FORMAT"),
    ("date-time without offset", (*_APPT, "updatedAt"), _setter("2024-03-01T10:00:00"), "SCHEMA-FORMAT"),
    ("order is not an integer", (*_APPT, "subject", "order"), _setter("3"), "SCHEMA-TYPE"),
    ("appointment is not an object", (*_APPT,), _setter([]), "SCHEMA-TYPE"),
    # enrichment
    ("end before start", (*_APPT, "end"), _setter("2024-03-01T07:00:00+00:00"), "ENRICH-END-BEFORE-START"),
]


def invalid_documents(rng: random.Random) -> list[Invalid]:
    """One document per rule in ``_BREAKS``, each a copy of one :func:`base_document` broken once."""
    base = base_document(rng)
    out: list[Invalid] = []
    for label, path, mutate, code in _BREAKS:
        doc = copy.deepcopy(base)
        mutate(_node(doc, path[:-1]), path[-1])
        where = f"{_pointer(path)}/unexpectedField" if mutate is _add_extra else _pointer(path)
        out.append(Invalid(label, doc, code, where))
    return out


def traffic(
    rng: random.Random,
    n_appointments: int,
    *,
    duplicate_rate: float = 0.05,
    invalid_rate: float = 0.02,
    shuffle: bool = False,
) -> list[TrafficRecord]:
    """A raw stream: life cycles (in upstream order unless ``shuffle``), duplicates, and invalid records
    (labelled with their code, plus undecodable bytes) at random positions."""
    docs = life_cycles(rng, n_appointments)
    docs = shuffle_with_duplicates(rng, docs, duplicate_rate=duplicate_rate) if shuffle else docs
    out: list[TrafficRecord] = []
    breaks = invalid_documents(rng)
    for doc in docs:
        key = doc["data"]["appointment"]["id"].encode()
        out.append(TrafficRecord(encode_json(doc), key, label=doc["data"]["eventType"]))
        if not shuffle and rng.random() < duplicate_rate:
            out.append(TrafficRecord(encode_json(doc), key, label="duplicate"))
        if rng.random() < invalid_rate:
            if rng.random() < 0.1:
                out.append(
                    TrafficRecord.rejected(
                        b'{"id": "wh-evt-truncated", "entity": "Appoint',
                        None,
                        "DECODE-JSON",
                        label="truncated",
                    )
                )
            else:
                bad = rng.choice(breaks)
                out.append(TrafficRecord.rejected(encode_json(bad.document), None, bad.code, label=bad.label))
    return out


# ---- the traffic protocol (app.core.traffic) -------------------------------------------------------------------
#: what of an ``/api/appointments/{id}`` answer the reference says
_ANSWERED = ("status", "event_id", "updated_at", "start", "applied_count", "stale_count")


def _judge(records: Sequence[TrafficRecord], seen: Observed, verdict: Verdict) -> None:
    delivered = [orjson.loads(r.value or b"") for r in records if r.outcome == "accepted"]
    ids = Counter({doc["id"]: 1 for doc in delivered})
    verdict.expected = sum(ids.values())
    enriched = Counter(orjson.loads(r.value or b"")["event_id"] for r in seen.read(ENRICHED_TOPIC))
    verdict.processed = sum(enriched.values())
    verdict.compare(ENRICHED_TOPIC, ids, enriched)
    answers = [
        (APPOINTMENT_PATH.format(appointmentId=a), want)
        for a, want in reference_final_states(delivered).items()
    ]
    wrong = wrong_answers(seen, answers, lambda body: {f: body[f] for f in _ANSWERED})
    verdict.wrong("appointments table", wrong)


def _traffic(rng: random.Random, n: int, now: datetime) -> Traffic:
    # four webhooks per life cycle, so n // 4 + 1 appointments always give more than n. Upstream order: the
    # generator's duplicates arrive right behind their original, as retried deliveries do.
    return Traffic(traffic(rng, n // 4 + 1), _judge)


TRAFFIC = TrafficSource(
    _traffic,
    lambda rng: [(None, doc) for doc in life_cycles(rng, 3)],
    "Appointment webhooks (~2.7 KB), stage one + the stale-aware appointments fold and its CRM commands",
    (ENRICHED_TOPIC,),
)
