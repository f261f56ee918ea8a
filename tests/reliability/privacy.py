"""Scenario 6's two halves, shared by every scenario that carries planted personal data.

``planted`` makes Vome deliveries whose every field the allow-lists keep back holds a unique marker; ``scan``
looks for those markers everywhere a deployment left data, except ``vome.raw`` and the dead letters' values (a
dead letter *is* the original body): every other topic of the deployment (keys, values, headers; changelogs and
Faust's own topics included), and whatever else the caller hands in (logs, ``/metrics``, table answers, the CRM's
database file).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.domains.vome.enrich import TRIGGERS
from app.domains.vome.generate import Generated, as_traffic, generate_with_secrets, invalid_variants
from tests.integration.test_vome import dump_topics, user_of
from tests.worker import Deployment, read_all

if TYPE_CHECKING:
    from tests.reliability.load import Mix


@dataclass(frozen=True)
class Planted:
    records: list[Generated]
    secrets: list[str]
    users: list[str]


def planted(rng: random.Random, rounds: int) -> Planted:
    """``rounds`` deliveries per trigger with every kept-back field a marker, plus broken variants of some."""
    out: list[Generated] = []
    secrets: list[str] = []
    users: list[str] = []
    for _ in range(rounds):
        for trigger in TRIGGERS:
            _, doc, marks = generate_with_secrets(rng, trigger)
            secrets += marks
            users.append(user_of(doc))
            key = doc["id"].encode() if isinstance(doc.get("id"), str) else None
            out.append(Generated("planted", trigger, json.dumps(doc).encode(), key))
            if rng.random() < 0.3:
                out.append(rng.choice(list(invalid_variants(trigger, doc))))
    return Planted(out, secrets, users)


def plant(mix: Mix, rng: random.Random, rounds: int) -> Planted:
    """:func:`planted` deliveries at random places of ``mix``'s Vome stream, which its oracle then judges too."""
    marked = planted(rng, rounds)
    mix.add("vome", [as_traffic(g) for g in marked.records], rng)
    return marked


@dataclass(frozen=True)
class Scan:
    leaked: list[str]
    topics_scanned: int
    records_scanned: int

    def figures(self, secrets: list[str]) -> dict[str, int]:
        return {
            "secrets_planted": len(secrets),
            "topics_scanned": self.topics_scanned,
            "records_scanned": self.records_scanned,
            "leaked": len(self.leaked),
        }


def scan(d: Deployment, secrets: list[str], extra: list[bytes]) -> Scan:
    """Which ``secrets`` appear outside ``vome.raw`` and the dead letters' values. Asserts first that they are
    on ``vome.raw``: a scan for values that were never sent would prove nothing."""
    s = d.settings
    raw = b"".join(r.value or b"" for r in read_all(s, "vome.raw"))
    missing = [m for m in secrets if m.encode() not in raw]
    assert not missing, f"{len(missing)} planted values are not on vome.raw: the scan would prove nothing"
    topics = dump_topics(s, lambda t: t.startswith((d.topic(""), s.app_id)))
    blob: list[bytes] = []
    records = 0
    for topic, rs in topics.items():
        if topic == d.topic("vome.raw"):
            continue
        keep_value = topic != d.topic("vome.deadletter")
        for r in rs:
            blob += [r.key or b"", (r.value or b"") if keep_value else b""]
            blob += [k.encode() + b"=" + v for k, v in r.headers]
            records += 1
    everything = b"\n".join(blob + extra)
    return Scan([m for m in secrets if m.encode() in everything], len(topics) - 1, records)
