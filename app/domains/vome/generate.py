"""Deterministic Vome deliveries for integration tests, the demo and the benchmark.

Every function takes a :class:`random.Random`, so a seed names a data set. Valid documents look like what a
volunteer organisation's Vome account sends (people, shifts at a food bank, onboarding sequences); invalid
variants each carry the error code the domain must dead-letter them with, so a test can check every rejection
by code. :func:`generate_with_secrets` fills every field the allow-lists keep back with unique marker strings,
for tests that prove none of them escapes.
"""

from __future__ import annotations

import copy
import random
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from app.core.clock import iso
from app.core.engine import encoded
from app.core.records import EVENT_TYPE_HEADER, Headers, RawRecord, content_event_id
from app.core.traffic import Observed, Traffic, TrafficRecord, TrafficSource, Verdict
from app.domains.vome.crm import SOURCE
from app.domains.vome.enrich import TRIGGERS, family_of
from app.domains.vome.privacy import leaving_pointers
from app.domains.vome.rules import TOPICS
from app.domains.vome.state import FEED_TOPIC, fold_volunteer
from app.sinks.crm.commands import CRM_TOPIC

EPOCH = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)

_FIRST = (
    "Jana",
    "Petr",
    "Eliška",
    "Tomáš",
    "Aisha",
    "Liam",
    "Sofia",
    "Mateo",
    "Chloé",
    "Noah",
    "Zuzana",
    "Omar",
)
_LAST = (
    "Nováková",
    "Dvořák",
    "Okafor",
    "Murphy",
    "García",
    "Tremblay",
    "Svoboda",
    "Nguyen",
    "Schmidt",
    "Kowalski",
)
_STREETS = ("Vinohradská", "Main Street", "Rue Saint-Denis", "Karlova", "Queen Street West", "Husova")
_CITIES = (
    ("Praha", 50.08, 14.43),
    ("Brno", 49.19, 16.61),
    ("Montréal", 45.50, -73.57),
    ("Toronto", 43.65, -79.38),
)
_TIMEZONES = ("Europe/Prague", "America/Toronto", "America/Montreal")
_SHIFTS = (
    ("Food bank sorting", "Sort and shelve donated food in the warehouse."),
    ("Soup kitchen lunch service", "Serve lunch and clean up the dining room."),
    ("Park clean-up", "Litter picking along the river path; gloves provided."),
    ("Reading buddies", "Read with primary-school pupils at the library."),
    ("Front desk", "Welcome visitors and answer the phone."),
)
_CATEGORIES = (
    ("Food security", "Fighting hunger locally."),
    ("Environment", "Green spaces."),
    ("Youth", "Kids."),
)
_FORMS = (("Volunteer application", "Applications 2025"), ("Police check consent", "Compliance"))
_SEQUENCES = ("New volunteer onboarding", "Youth programme onboarding")
_TAGS = ("Weekend", "Driver", "Bilingual", "Team lead")
_QUESTIONS: tuple[tuple[str, str, list[str]], ...] = (
    ("Why do you want to volunteer with us?", "long_text", []),
    ("Which days suit you?", "multiple_choice", ["Mon", "Wed", "Sat"]),
    ("Do you hold a driving licence?", "yes_no", ["Yes", "No"]),
)
_ORIENTATION_STATUSES = ("completed", "pending", "scheduled")


def uid(rng: random.Random) -> str:
    """A UUID-shaped id (Vome's ids are opaque strings)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _at(rng: random.Random, days: int = 60) -> datetime:
    return EPOCH + timedelta(minutes=rng.randrange(days * 24 * 60))


@dataclass(frozen=True)
class Person:
    """One volunteer, reused across families so tables see several events per user."""

    id: str
    first_name: str
    last_name: str
    email: str
    phone: str
    address: str
    city: tuple[str, float, float]
    date_of_birth: str
    timezone: str
    gender: int


def person(rng: random.Random) -> Person:
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    handle = f"{first}.{last}".lower().encode("ascii", "ignore").decode()
    city = rng.choice(_CITIES)
    return Person(
        id=uid(rng),
        first_name=first,
        last_name=last,
        email=f"{handle}{rng.randrange(100)}@example.org",
        phone=f"+420 6{rng.randrange(10**7, 10**8)}",
        address=f"{rng.choice(_STREETS)} {rng.randrange(1, 200)}, {city[0]}",
        city=city,
        date_of_birth=f"{rng.randrange(1950, 2007)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        timezone=rng.choice(_TIMEZONES),
        gender=rng.randrange(0, 3),
    )


def _coords(p: Person) -> list[str]:
    return [f"{p.city[1]:.4f}", f"{p.city[2]:.4f}"]


def _volunteer(p: Person, *, form: bool = False) -> dict[str, Any]:
    """``user`` / ``user_info``: gender and coordinates are typed differently on forms, as the seed says."""
    return {
        "id": p.id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email,
        "gender": ("female", "male", "prefer not to say")[p.gender] if form else p.gender,
        "address": p.address,
        "phone_number": p.phone,
        "date_of_birth": p.date_of_birth,
        "timezone": p.timezone,
        "address_coordinates": ",".join(_coords(p)) if form else _coords(p),
    }


def booking(rng: random.Random, p: Person, *, approved: bool | None = None) -> dict[str, Any]:
    start = _at(rng).replace(minute=0)
    end = start + timedelta(hours=rng.choice((2, 3, 4)))
    title, description = rng.choice(_SHIFTS)
    category, category_text = rng.choice(_CATEGORIES)
    approved = rng.random() < 0.4 if approved is None else approved
    arrival = start + timedelta(minutes=rng.randrange(-10, 15))
    departure = end + timedelta(minutes=rng.randrange(-20, 30))
    return {
        "id": uid(rng),
        "shift": {
            "id": uid(rng),
            "created_at": iso(start - timedelta(days=14)),
            "shift_start_at": iso(start),
            "shift_end_at": iso(end),
            "spots": rng.randrange(2, 20),
            "shift_title": title,
            "shift_description": description,
        },
        "created_at": iso(start - timedelta(days=rng.randrange(1, 10))),
        "status": 2 if approved else rng.choice((0, 1)),
        "arrival_time": iso(arrival) if approved else None,
        "departure_time": iso(departure) if approved else None,
        "hours_approved_by": "Coordinator Marta Horáková" if approved else None,
        "user": _volunteer(p),
        "opportunity": {
            "id": uid(rng),
            "status": "published",
            "category": {"id": uid(rng), "title": category, "description": category_text},
            "title": f"{category} volunteers",
            "description": f"Help our {category.lower()} programme.",
        },
    }


def profile(rng: random.Random, p: Person) -> dict[str, Any]:
    category, _ = rng.choice(_CATEGORIES)
    option = {"id": uid(rng), "value": "T-shirt size M", "order": 2}
    return {
        "id": p.id,
        "logged_hours": rng.randrange(0, 300),
        "is_offline": False,
        "is_following": rng.random() < 0.5,
        "emergency_contact": {
            "name": f"{rng.choice(_FIRST)} {p.last_name}",
            "phone_number": "+420 602 111 222",
            "relationship": "spouse",
        },
        "medical_information": {
            "description": "Peanut allergy; carries an EpiPen.",
            "has_medical_info": True,
        },
        "profile_details": {
            "first_name": p.first_name,
            "last_name": p.last_name,
            "full_name": f"{p.first_name} {p.last_name}",
            "email": p.email,
            "profile_image": f"https://cdn.vomevolunteer.com/avatars/{p.id}.png",
            "phone_number": p.phone,
            "date_of_birth": p.date_of_birth,
            "gender": ("female", "male", "prefer not to say")[p.gender],
            "gender_text": "",
            "occupation": "Nurse",
            "occupation_institution_name": "Fakultní nemocnice",
            "skills": ["First aid", "Cooking"],
            "languages": ["Czech", "English"],
            "address": p.address,
            "created_at": iso(EPOCH - timedelta(days=rng.randrange(1, 700))),
            "age": str(2025 - int(p.date_of_birth[:4])),
            "address_coordinates": _coords(p),
        },
        "opportunities": [
            {
                "id": uid(rng),
                "opportunity": {
                    "id": uid(rng),
                    "title": f"{category} volunteers",
                    "category": {"id": uid(rng), "title": category},
                },
            }
        ],
        "most_recent_shift": iso(_at(rng)),
        "completed_shifts": rng.randrange(0, 40),
        "profile_tags": [{"id": uid(rng), "tag": {"id": uid(rng), "tag_title": rng.choice(_TAGS)}}],
        "custom_fields": [
            {
                "id": uid(rng),
                "custom_field": {"id": uid(rng), "field_type": 3, "is_active": True, "options": [option]},
                "custom_field_value": [{"id": uid(rng), "value": option}],
            }
        ],
    }


def form_submission(rng: random.Random, p: Person) -> dict[str, Any]:
    form, folder = rng.choice(_FORMS)
    questions = []
    for title, kind, options in _QUESTIONS:
        answered = rng.random() < 0.9
        questions.append(
            {
                "id": uid(rng),
                "question": {"id": uid(rng), "title": title, "question_type": kind, "options": list(options)},
                "answer": ("I want to give back to my neighbourhood." if not options else options[0])
                if answered
                else None,
                "options": list(options[:1]) if answered and options else [],
                "responded": answered,
            }
        )
    return {
        "id": uid(rng),
        "user": _volunteer(p, form=True),
        "submission_status": rng.choice(("submitted", "approved", "pending_review")),
        "created_at": iso(_at(rng)),
        "arrival_source": rng.choice(("web", "mobile", "import")),
        "questions": questions,
        "medical_info": "Type 1 diabetes.",
        "emergency_contact": {
            "id": uid(rng),
            "name": f"{rng.choice(_FIRST)} {p.last_name}",
            "relationship": "parent",
            "phone_number": "+420 603 333 444",
        },
        "digital_consent": [
            {
                "id": uid(rng),
                "digital_consent_info": "I consent to a police background check.",
                "attached_file": f"https://files.vomevolunteer.com/consents/{uid(rng)}.pdf",
                "consent_status": 1,
            }
        ],
        "general_availability": [{"id": uid(rng), "day": d, "availability": "afternoon"} for d in (1, 3)],
        "attachments": [
            {
                "id": uid(rng),
                "document_file": f"https://files.vomevolunteer.com/docs/{uid(rng)}.pdf",
                "notes": "Scan of ID card",
                "attachment_info": {
                    "id": uid(rng),
                    "title": "Identity document",
                    "description": "Front side",
                },
            }
        ],
        "opportunities": [],
        "folder": {"name": folder},
        "form": {"id": uid(rng), "title": form},
    }


def sequence_assignment(rng: random.Random, p: Person) -> dict[str, Any]:
    created = _at(rng)
    steps = []
    for n, kind in enumerate(("orientation", "interview", "document"), start=1):
        status = rng.choice(_ORIENTATION_STATUSES)
        completion = iso(created + timedelta(days=n)) if status == "completed" else None
        step: dict[str, Any] = {"step": n, "type": kind, "orientation_details": [], "interview_details": []}
        if kind == "orientation":
            step["orientation_details"] = [
                {
                    "title": "Welcome session",
                    "description": "Who we are and how shifts work.",
                    "user_orientation": {
                        "status": status,
                        "completion_on": completion,
                        "expiration_on": None,
                    },
                }
            ]
        elif kind == "interview":
            step["interview_details"] = [
                {
                    "title": "Meet the coordinator",
                    "description": "A 20-minute call.",
                    "user_interview": {
                        "interview": "Phone call",
                        "status": status,
                        "completion_on": completion,
                        "expiration_on": None,
                    },
                }
            ]
        steps.append(step)
    return {
        "id": uid(rng),
        "user_info": _volunteer(p),
        "sequence_info": {
            "id": uid(rng),
            "title": rng.choice(_SEQUENCES),
            "description": "Steps every new volunteer completes before a first shift.",
            "sequence_status": "active",
            "display_status": "In progress",
            "step_info": steps,
        },
        "status": "in_progress",
        "created_at": iso(created),
        "updated_at": iso(created + timedelta(days=rng.randrange(0, 5), minutes=5)),
    }


_BUILDERS: dict[str, Callable[[random.Random, Person], dict[str, Any]]] = {
    "booking": booking,
    "profile": profile,
    "form_submission": form_submission,
    "sequence_assignment": sequence_assignment,
}


def document(rng: random.Random, trigger: str, p: Person | None = None) -> dict[str, Any]:
    """A valid body for ``trigger`` (a new person unless ``p`` is given)."""
    return _BUILDERS[family_of(trigger)](rng, p if p is not None else person(rng))


@dataclass(frozen=True)
class Generated:
    """One delivery as it would sit on ``vome.raw``; ``code`` is None when it must be accepted."""

    label: str
    trigger: str | None
    value: bytes
    key: bytes | None
    code: str | None = None

    @property
    def headers(self) -> Headers:
        return ((EVENT_TYPE_HEADER, self.trigger.encode()),) if self.trigger is not None else ()

    def raw(self, topic: str = "vome.raw", offset: int = -1) -> RawRecord:
        return RawRecord(value=self.value, key=self.key, headers=self.headers, topic=topic, offset=offset)


def _valid(trigger: str, doc: dict[str, Any], label: str = "valid") -> Generated:
    key = doc["id"].encode() if isinstance(doc.get("id"), str) and doc["id"] else None
    return Generated(label, trigger, orjson.dumps(doc), key)


def _without(doc: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    del node[path[-1]]
    return out


def _with(doc: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


_USER_FIELD = {"booking": "user", "form_submission": "user", "sequence_assignment": "user_info"}
_INTEGER_FIELD = {
    "booking": ("status",),
    "profile": ("logged_hours",),
    "form_submission": ("general_availability", 0, "day"),
    "sequence_assignment": ("user_info", "gender"),
}
_TIMESTAMP_FIELD = {
    "booking": ("shift", "shift_start_at"),
    "profile": ("profile_details", "created_at"),
    "form_submission": ("created_at",),
    "sequence_assignment": ("updated_at",),
}


def invalid_variants(trigger: str, doc: dict[str, Any]) -> Iterator[Generated]:
    """Every kind of broken delivery of ``doc``, each labelled with the code it must be dead-lettered with."""
    family = family_of(trigger)
    valid = _valid(trigger, doc)
    yield Generated("not-json", trigger, valid.value[:-1], valid.key, "DECODE-JSON")
    yield Generated("empty-body", trigger, b"", valid.key, "DECODE-EMPTY")
    yield Generated("not-utf8", trigger, b'{"id": "\xff\xfe"}', valid.key, "DECODE-UTF8")
    yield Generated("array-body", trigger, b"[]", valid.key, "DECODE-NOT-OBJECT")
    yield Generated("no-trigger", None, valid.value, valid.key, "VOME-UNKNOWN-TRIGGER")
    yield Generated("unknown-trigger", f"{family}.exploded", valid.value, valid.key, "VOME-UNKNOWN-TRIGGER")
    yield _coded("missing-id", trigger, _without(doc, "id"), "SCHEMA-REQUIRED")
    yield _coded("empty-id", trigger, _with(doc, "", "id"), "SCHEMA-MIN-LENGTH")
    if family in _USER_FIELD:
        yield _coded("missing-user", trigger, _without(doc, _USER_FIELD[family]), "SCHEMA-REQUIRED")
        yield _coded("missing-user-id", trigger, _without(doc, _USER_FIELD[family], "id"), "SCHEMA-REQUIRED")
    path = _INTEGER_FIELD[family]
    yield _coded("integer-as-string", trigger, _set_path(doc, path, "2"), "SCHEMA-TYPE")
    yield _coded("integer-as-bool", trigger, _set_path(doc, path, True), "SCHEMA-TYPE")
    yield _coded("string-as-number", trigger, _with(doc, 12345, "id"), "SCHEMA-TYPE")
    ts = _TIMESTAMP_FIELD[family]
    yield _coded("timestamp-not-rfc3339", trigger, _set_path(doc, ts, "03/04/2025 10:00"), "SCHEMA-FORMAT")
    yield _coded(
        "timestamp-without-offset", trigger, _set_path(doc, ts, "2025-03-04T10:00:00"), "SCHEMA-FORMAT"
    )
    yield _coded("timestamp-as-number", trigger, _set_path(doc, ts, 1741082400), "SCHEMA-TYPE")
    if family == "booking":
        approved = _with(doc, "Coordinator", "hours_approved_by")
        approved = _with(approved, "2025-03-04T12:00:00Z", "arrival_time")
        approved = _with(approved, "2025-03-04T09:00:00Z", "departure_time")
        yield _coded("departure-before-arrival", trigger, approved, "ENRICH-NEGATIVE-HOURS")
    if family == "profile":
        yield _coded("boolean-as-string", trigger, _with(doc, "true", "is_offline"), "SCHEMA-TYPE")
    if family == "form_submission":
        yield _coded("gender-as-integer", trigger, _with(doc, 1, "user", "gender"), "SCHEMA-TYPE")
    if family in ("booking", "sequence_assignment"):
        field = _USER_FIELD[family]
        yield _coded("gender-as-string", trigger, _with(doc, "female", field, "gender"), "SCHEMA-TYPE")
        yield _coded(
            "coordinates-as-string",
            trigger,
            _with(doc, "50.1,14.4", field, "address_coordinates"),
            "SCHEMA-TYPE",
        )


def _set_path(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node: Any = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


def _coded(label: str, trigger: str, doc: dict[str, Any], code: str) -> Generated:
    valid = _valid(trigger, doc, label)
    return Generated(label, trigger, valid.value, valid.key, code)


#: How often each trigger fires in a live Vome account, roughly: bookings dominate.
_WEIGHTS: dict[str, int] = {
    "booking.created": 30,
    "booking.updated": 20,
    "booking.deleted": 4,
    "profile.created": 6,
    "profile.updated": 10,
    "profile.archived": 1,
    "profile.deleted": 1,
    "form_submission.created": 8,
    "form_submission.updated": 3,
    "form_submission.deleted": 1,
    "sequence_assignment.created": 5,
    "sequence_assignment.updated": 8,
    "sequence_assignment.deleted": 1,
}


def generate(rng: random.Random, n: int, *, invalid_share: float = 0.05) -> list[Generated]:
    """``n`` deliveries from a pool of volunteers, about ``invalid_share`` of them broken (labelled by code)."""
    people = [person(rng) for _ in range(max(3, n // 20))]
    triggers, weights = list(_WEIGHTS), list(_WEIGHTS.values())
    out: list[Generated] = []
    for _ in range(n):
        trigger = rng.choices(triggers, weights)[0]
        doc = document(rng, trigger, rng.choice(people))
        if rng.random() < invalid_share:
            out.append(rng.choice(list(invalid_variants(trigger, doc))))
        else:
            out.append(_valid(trigger, doc))
    return out


def _plant(node: Any, pointer: str, allowed: set[str], rng: random.Random, secrets: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _plant(v, f"{pointer}/{k}", allowed, rng, secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_plant(v, pointer, allowed, rng, secrets) for v in node]
    if isinstance(node, str) and pointer not in allowed:
        secret = f"SECRET{rng.getrandbits(64):016x}"
        secrets.append(secret)
        return secret
    return node


def generate_with_secrets(
    rng: random.Random, trigger: str | None = None
) -> tuple[str, dict[str, Any], list[str]]:
    """A valid body whose every string outside the family's allow-list is a unique marker, and the markers.

    Medical information, emergency contacts, birth dates, consents, attachments and answers are all outside
    the allow-lists, so every one of them carries a marker; so do addresses and coordinates. The volunteer's
    name, e-mail and phone on bookings, forms and assignments go to the CRM (``CRM_IDENTITY``): no marker. Numbers and booleans carry none.
    """
    trigger = trigger if trigger is not None else rng.choice(TRIGGERS)
    doc = document(rng, trigger)
    _fill_optional(doc)
    allowed = set(leaving_pointers(family_of(trigger)))
    secrets: list[str] = []
    planted: dict[str, Any] = _plant(doc, "", allowed, rng, secrets)
    return trigger, planted, secrets


def _fill_optional(doc: dict[str, Any]) -> None:
    """Give the fields a generator may leave null a string, so they too carry a marker."""
    for k, v in list(doc.items()):
        if v is None and k not in ("arrival_time", "departure_time"):
            doc[k] = "filled"
        elif isinstance(v, dict):
            _fill_optional(v)
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    _fill_optional(item)


# ---- the traffic protocol (app.core.traffic) -------------------------------------------------------------------
def as_traffic(g: Generated) -> TrafficRecord:
    if g.code is None:
        return TrafficRecord(g.value, g.key, g.headers, label=g.label)
    return TrafficRecord.rejected(g.value, g.key, g.code, g.headers, g.label)


#: The fold's clock only stamps what it writes (erasure time, command times), never what it decides.
FOLD_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def commanded_by_fold(feed: Sequence[RawRecord]) -> set[str]:
    """The source events of every CRM command the volunteers fold makes of ``feed`` (records in partition order),
    replayed through the pure fold itself: the reference for ``crm.commands`` whatever order the feed took."""
    states: dict[bytes | None, Any] = {}
    out: set[str] = set()
    for r in feed:
        folded = fold_volunteer(states.get(r.key), orjson.loads(r.value) if r.value else None, FOLD_NOW)
        if folded.changed:
            states[r.key] = folded.state
        out.update(
            orjson.loads(e.value)["source_event_id"]
            for e in map(encoded, folded.emits)
            if e.topic == CRM_TOPIC and e.value
        )
    return out


def _trigger(r: TrafficRecord) -> str:
    return RawRecord(r.value, r.key, r.headers).event_type_header or ""


def _judge(records: Sequence[TrafficRecord], seen: Observed, verdict: Verdict) -> None:
    valid = {
        content_event_id(_trigger(r), orjson.loads(r.value or b"")): r
        for r in records
        if r.outcome == "accepted"
    }
    # an erasure projects nothing: it tombstones the volunteer's projections instead
    projected = Counter({e: 1 for e, r in valid.items() if _trigger(r) != "profile.deleted"})
    verdict.expected = sum(projected.values())
    got: Counter[str] = Counter()
    for topic in TOPICS.values():
        got.update(orjson.loads(r.value)["event_id"] for r in seen.read(topic) if r.value is not None)
    verdict.processed = sum(got.values())
    verdict.compare("vome projections", projected, got)
    # Every valid delivery reaches the volunteers feed; the CRM commands are what the fold makes of that feed in its
    # own order (design note 13: nothing after an erasure or for a deleted entity, so which deliveries get commands
    # depends on the order a volunteer's deliveries from several raw partitions reached the feed).
    feed = seen.read(FEED_TOPIC)
    on_feed = Counter(
        {e: 1 for e in (orjson.loads(r.value).get("event_id") for r in feed if r.value) if e in valid}
    )
    verdict.compare("vome volunteers feed", Counter(dict.fromkeys(valid, 1)), on_feed)
    commands = Counter(
        doc["source_event_id"]
        for doc in (orjson.loads(r.value or b"") for r in seen.read(CRM_TOPIC))
        if doc["source"] == SOURCE
    )
    verdict.compare("vome crm.commands", Counter(dict.fromkeys(commanded_by_fold(feed), 1)), commands)


def _traffic(rng: random.Random, n: int, now: datetime) -> Traffic:
    return Traffic([as_traffic(g) for g in generate(rng, n)], _judge)


TRAFFIC = TrafficSource(
    _traffic,
    lambda rng: [(t, document(rng, t)) for t in TRIGGERS],
    "Vome webhook deliveries, stage one + volunteers fold + CRM commands",
    tuple(TOPICS.values()),
)
