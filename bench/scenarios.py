"""The benchmark's traffic per catalog domain, from the domains' own traffic sources.

A scenario is a domain and a backlog of raw records exactly as upstream would publish them (redeliveries,
broken records and all), so the variants measure the real mix. Latency is measured on the scenario's *primary*
output: the one output every accepted event has, which names the event id it came from.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core.catalog import Catalog
from app.core.domain import Domain, domains
from app.core.engine import encode_value
from app.core.errors import RecordError
from app.core.records import DomainRules, RawRecord
from app.core.traffic import TrafficSource
from bench.kafka import Rec

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Scenario:
    """One catalog domain as the bench runs it: its rules, and its traffic source's backlog and primary outputs."""

    domain: Domain
    exactly_once: bool = False

    @property
    def name(self) -> str:
        return self.domain.name

    @property
    def rules(self) -> DomainRules:
        return self.domain.rules

    @property
    def source(self) -> TrafficSource:
        return self.domain.traffic_source()

    @property
    def description(self) -> str:
        return self.source.description

    @property
    def primary_topics(self) -> tuple[str, ...]:
        return self.source.primary_topics

    def records(self, plan_mode: str) -> int:
        """The backlog of a run: the source's quick size, or its full size for a full run."""
        quick, full = self.source.bench_records
        return full if plan_mode == "full" else quick

    def generate(self, rng: random.Random, n: int) -> list[Rec]:
        """``n`` raw records as upstream would publish them. NOW, not the wall clock: ``distinct_accepted`` judges
        at NOW, and a seed must give the same bytes on every run. A stream longer than ``n`` is cut, as a backlog
        taken at any instant would be."""
        return [(r.key, r.value, r.headers) for r in self.source.generate(rng, n, NOW).records[:n]]


def scenarios(catalog: Catalog) -> dict[str, Scenario]:
    """A scenario per catalog domain that names a traffic source, in catalog order."""
    return {
        d.name: Scenario(d, exactly_once=catalog.domains[d.name].exactly_once)
        for d in domains(catalog)
        if d.traffic is not None
    }


def distinct_accepted(scenario: Scenario, records: Sequence[Rec]) -> list[tuple[Rec, str]]:
    """The records that produce a primary output, once per event id, with that id: what latency can track."""
    rules = scenario.rules
    seen: set[str] = set()
    out: list[tuple[Rec, str]] = []
    for key, value, headers in records:
        raw = RawRecord(value=value, key=key, headers=headers, topic=f"{scenario.name}.raw")
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
            event_id = scenario.source.event_id_of(encode_value(primary[0].value))
            if event_id is not None:
                out.append(((key, value, headers), event_id))
    return out
