"""The benchmark's traffic per domain, from the domains' own generators, plus how to recognise an event's output.

A scenario is a domain and a backlog of raw records exactly as upstream would publish them (redeliveries,
broken records and all), so the variants measure the real mix. Latency is measured on the scenario's *primary*
output: the one output every accepted event has, which names the event id it came from.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from app.core.avro import SINGLE_OBJECT_MAGIC, decode_single_object
from app.core.engine import encode_value
from app.core.errors import RecordError
from app.core.records import DomainRules, RawRecord
from bench.kafka import Rec

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    name: str
    domain: str
    description: str
    generate: Callable[[random.Random, int], list[Rec]]
    primary_topics: tuple[str, ...]
    exactly_once: bool = False

    @property
    def rules(self) -> DomainRules:
        import importlib

        rules: DomainRules = importlib.import_module(f"app.domains.{self.domain}.rules").RULES
        return rules


def _phoenix(rng: random.Random, n: int) -> list[Rec]:
    from app.domains.phoenix.generate import session_stream

    # the stream adds redeliveries, broken and foreign events on top of the sessions: ask for a little less
    records = session_stream(
        rng, sessions=max(10, int(n * 0.8)), talents=max(5, n // 15), coaches=max(2, n // 150)
    )
    return [(r.key, r.value, ()) for r in records[:n]]


def _pismo(rng: random.Random, n: int) -> list[Rec]:
    from app.domains.pismo.generate import generate

    return [(g.key, g.value, ()) for g in generate(rng, n)]


def _vome(rng: random.Random, n: int) -> list[Rec]:
    from app.domains.vome.generate import generate

    return [(g.key, g.value, g.headers) for g in generate(rng, n)]


def _appointments(rng: random.Random, n: int) -> list[Rec]:
    from app.domains.appointments.generate import traffic

    # four webhooks per life cycle, so n // 4 + 1 appointments always give more than n; the cut drops the last
    # webhooks of the latest appointments, as a backlog taken at any instant would. Upstream order: the
    # generator's duplicates arrive right behind their original, as retried deliveries do.
    return [(g.key, g.value, ()) for g in traffic(rng, n // 4 + 1)[:n]]


def _lara(rng: random.Random, n: int) -> list[Rec]:
    from app.domains.lara.generate import member_history

    # ~16 records per member at the generator's own mix (a full set, ten changes or updates, progress for two
    # cycles); the count varies with the draw, so grow the membership until the history holds n, each try from
    # the same seed so the stream stays one function of ``rng``. NOW, not the wall clock: ``process`` in
    # ``distinct_accepted`` judges periods at NOW, and a seed must give the same bytes on every run.
    seed = rng.getrandbits(64)
    members = max(5, n // 15)
    while True:
        history = member_history(random.Random(seed), now=NOW, members=members, changes=10 * members)
        if len(history.records) >= n:
            return [(r.key, r.value, r.headers) for r in history.records[:n]]
        members += max(1, members // 10)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "phoenix",
            "phoenix",
            "Phoenix bus envelopes (~4 KB), stage one + talent-progress and coach-activity folds",
            _phoenix,
            ("phoenix.sessions.enriched",),
        ),
        Scenario(
            "pismo",
            "pismo",
            "Pismo migration results (~0.5 KB), exactly-once stage one to the Avro audit + phases fold",
            _pismo,
            ("audit.migration",),
            exactly_once=True,
        ),
        Scenario(
            "vome",
            "vome",
            "Vome webhook deliveries, stage one + volunteers fold + CRM commands",
            _vome,
            ("vome.bookings", "vome.profiles", "vome.forms", "vome.sequences"),
        ),
        Scenario(
            "appointments",
            "appointments",
            "Appointment webhooks (~2.7 KB), stage one + the stale-aware appointments fold and its CRM commands",
            _appointments,
            ("appointments.enriched",),
        ),
        Scenario(
            "lara",
            "lara",
            "Lära LMS records (~0.2 KB), stage one + timeline, cycle and compliance folds",
            _lara,
            # Lära has no output topic: the feeds are the only record every accepted event gets, and they
            # carry its eventId (the compliance snapshots name the member, not the event); member records that
            # name a custom field go to the identities feed first
            ("lara.identities.feed", "lara.statuses.feed", "lara.cycles.feed"),
        ),
    )
}


def event_id_of(value: bytes | None) -> str | None:
    """The event id an output names: ``eventId`` / ``event_id`` of a JSON object, or of an Avro audit record.

    Both spellings, because the domains keep their upstream's casing: Phoenix and the Lära feeds say ``eventId``;
    Vome, Appointments and the Pismo audit say ``event_id``."""
    if not value:
        return None
    try:
        doc = decode_single_object(value)[1] if value.startswith(SINGLE_OBJECT_MAGIC) else orjson.loads(value)
    except (RecordError, orjson.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    found = doc.get("eventId", doc.get("event_id"))
    return None if found is None else str(found)


def distinct_accepted(scenario: Scenario, records: Sequence[Rec]) -> list[tuple[Rec, str]]:
    """The records that produce a primary output, once per event id, with that id: what latency can track."""
    rules = scenario.rules
    seen: set[str] = set()
    out: list[tuple[Rec, str]] = []
    for key, value, headers in records:
        raw = RawRecord(value=value, key=key, headers=headers, topic=f"{scenario.domain}.raw")
        try:
            processed = rules.process(raw, NOW)
            emits = rules.route(processed, NOW)
        except RecordError:
            continue
        if processed.event_id in seen:
            continue
        seen.add(processed.event_id)
        primary = [e for e in emits if e.topic in scenario.primary_topics and e.value is not None]
        if primary:
            event_id = event_id_of(encode_value(primary[0].value))
            if event_id is not None:
                out.append(((key, value, headers), event_id))
    return out
