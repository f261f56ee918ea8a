"""Scenario 5, offline: at least 10,000 hostile records per domain through the pure rules, and none of them may
crash. Every record ends accepted or rejected with a stable code, never ``INTERNAL-ERROR``; the unbroken ones are
accepted. The explicit cases below are the crashes this fuzzer found, kept as regressions.
"""

from __future__ import annotations

import random
from collections import Counter

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from app.core.records import EVENT_TYPE_HEADER
from app.domains.lara.generate import valid_documents
from app.domains.vome.generate import document
from tests.reliability.hostile import (
    ACCEPTED,
    DOMAINS,
    INTERNAL,
    STABLE_CODE,
    Hostile,
    build,
    hostile_records,
    seeds,
    verdict,
)
from tests.reliability.results import record_scenario

BATCH = 100
BATCHES = 100  # x BATCH = 10,000 records per domain


def _judge(domain: str, records: list[Hostile], tally: Counter[str]) -> None:
    for r in records:
        v = verdict(domain, r)
        tally[v.outcome] += 1
        assert v.outcome != INTERNAL, f"{domain} {r.mutation} build{(domain, *r.recipe)!r}: {v.crash}"
        assert v.outcome == ACCEPTED or STABLE_CODE.match(v.outcome), (r.mutation, v.outcome)
        if r.mutation == "valid":
            assert v.outcome == ACCEPTED, (domain, v.outcome, r.recipe)


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_ten_thousand_hostile_records_per_domain_never_crash_the_rules(domain: str) -> None:
    tally: Counter[str] = Counter()
    mutations: Counter[str] = Counter()

    @settings(
        max_examples=BATCHES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # A batch holds megabyte bodies: shrinking one costs minutes. The failure names the draw instead.
        phases=(Phase.explicit, Phase.generate),
    )
    @given(st.lists(hostile_records(domain), min_size=BATCH, max_size=BATCH))
    def batch(records: list[Hostile]) -> None:
        mutations.update(r.mutation.split("+")[0] for r in records)
        _judge(domain, records, tally)

    batch()
    total = sum(tally.values())
    assert total >= BATCHES * BATCH
    assert tally[ACCEPTED] > total // 10, "good records must be interleaved with the bad"
    assert len(mutations) >= 14, mutations  # every kind of break was drawn
    record_scenario(
        "5-hostile-offline",
        domain,
        sent=total,
        processed=total,
        accepted=tally[ACCEPTED],
        dead_lettered=total - tally[ACCEPTED],
        lost=0,
        duplicated=0,
        crashes=0,
        codes=dict(tally.most_common()),
    )


# ---- the crashes found, one regression each ---------------------------------------------------------------------
def _vome(trigger: str, doc: dict[str, object] | bytes) -> Hostile:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    return Hostile("vome", "regression", body, b"k", ((EVENT_TYPE_HEADER, trigger.encode()),))


def test_nesting_deeper_than_the_encoder_allows_is_a_decode_error_not_a_crash() -> None:
    """Vome ignores unknown fields, so 300 levels of junk used to validate and then crash the event id's
    canonical JSON (orjson encodes 254 levels, parses 1024)."""
    doc = document(random.Random(1), "booking.created")
    body = orjson.dumps({**doc, "junk": "HOLE"}).replace(b'"HOLE"', b"[" * 300 + b"]" * 300)
    assert verdict("vome", _vome("booking.created", body)).outcome == "DECODE-TOO-DEEP"


def test_an_integral_float_beyond_64_bits_is_refused_where_it_enters() -> None:
    """1e23 counted as an integer and reached the outputs, which no JSON encoder downstream can write."""
    doc = document(random.Random(2), "profile.updated")
    body = orjson.dumps({**doc, "logged_hours": "HOLE"}).replace(b'"HOLE"', b"1e23")
    assert verdict("vome", _vome("profile.updated", body)).outcome == "SCHEMA-MAXIMUM"


def test_ids_longer_than_the_crm_holds_are_refused_by_vome_and_kept_by_appointments() -> None:
    """Vome's model caps its ids at the CRM's 255 (SCHEMA-MAX-LENGTH); an appointment's id has no such limit in
    its seed, so the appointment is kept and only its CRM activity is left to the sink to dead-letter."""
    doc = document(random.Random(3), "booking.created")
    long_id = "b" * 256
    assert verdict("vome", _vome("booking.created", {**doc, "id": long_id})).outcome == "SCHEMA-MAX-LENGTH"
    [seed] = [s for s in seeds("appointments") if s.doc["data"]["appointment"].get("participants")][:1]
    appointment = {**seed.doc["data"]["appointment"], "id": long_id}
    record = Hostile(
        "appointments",
        "regression",
        orjson.dumps({**seed.doc, "data": {**seed.doc["data"], "appointment": appointment}}),
        None,
        (),
    )
    found = verdict("appointments", record)
    assert (found.outcome, found.table_outcomes) == (ACCEPTED, ["applied"])


def test_a_period_lasting_past_year_9999_is_an_enrich_error() -> None:
    [(event_type, period)] = [(t, d) for t, d in valid_documents(random.Random(4)) if t == "period"]
    body = orjson.dumps({**period, "duration": 10**12, "durationUnit": 4})
    record = Hostile("lara", "regression", body, b"k", ((EVENT_TYPE_HEADER, event_type.encode()),))
    assert verdict("lara", record).outcome == "ENRICH-PERIOD-END"


def test_every_mutation_reproduces_byte_for_byte() -> None:
    """A shrunk failure is only useful if the same draw rebuilds the same record."""
    for domain in DOMAINS:
        a = build(domain, 3, "duplicate-keys", 99, {"x": 1})
        b = build(domain, 3, "duplicate-keys", 99, {"x": 1})
        assert a == b
