"""Scenario 5 through a real worker: a share of the hostile records on every raw topic, and hostile bodies at
both webhooks (a 10 MB one included), interleaved with good records. The worker must not crash; every record
must end as the pure rules say it should (the offline :func:`verdict`): the bad ones dead-lettered with their
stable code and never ``INTERNAL-ERROR``, the good ones accepted; a webhook must answer what the ingress's pure
check says (413 for a body over the limit, never a 5xx).
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.core import deadletter as dl
from app.core.records import EVENT_TYPE_HEADER
from app.domains.appointments.rules import appointment_id_of
from app.domains.appointments.views import WEBHOOK_PATH as APPOINTMENTS_WEBHOOK
from app.domains.vome.enrich import TRIGGERS
from app.domains.vome.rules import entity_id_of
from app.domains.vome.views import WEBHOOK_PATH as VOME_WEBHOOK
from app.ingress.webhooks import WebhookSource, check_delivery
from tests.reliability.hostile import ACCEPTED, DOMAINS, INTERNAL, MUTATIONS, Hostile, build, verdict
from tests.reliability.load import Mix, crashed_agents, events_in
from tests.reliability.results import record_scenario
from tests.worker import Deployment, Worker, produce, read_all, wait_until

pytestmark = pytest.mark.integration

#: Kafka's default message.max.bytes is about 1 MB; bigger records cannot reach a raw topic (only a webhook).
BROKER_MAX = 900_000
WEBHOOK_MAX = 512 * 1024  # Settings.webhook_max_bytes' default


def draw(domain: str, n: int, seed: int) -> list[Hostile]:
    """``n`` hostile records drawn like the offline fuzzer's (same builder, a seeded choice of draws)."""
    rng = random.Random(f"{seed}-{domain}")
    names = sorted(MUTATIONS)
    out: list[Hostile] = []
    while len(out) < n:
        mutation = rng.choice(names)
        if mutation in ("huge-string", "huge-array") and rng.random() < 0.8:
            mutation = "valid"
        record = build(
            domain, rng.randrange(1000), mutation, rng.getrandbits(32), rng.choice([1, "x", None, []])
        )
        if record.value is None and record.key is None:  # Kafka takes no record without key and value
            record = dataclasses.replace(record, key=b"tombstone")
        if record.value is None or len(record.value) + sum(len(v) for _, v in record.headers) < BROKER_MAX:
            out.append(record)
    return out


def webhook_share(w: Worker, rng: random.Random, n: int) -> tuple[list[tuple[str, Hostile]], Counter[str]]:
    """Hostile bodies at both webhooks; every answer checked against the ingress's pure verdict. Returns the
    deliveries the ingress took (now on a raw topic) and the statuses seen."""
    sources = {
        "vome": WebhookSource("vome", VOME_WEBHOOK, entity_id_of, triggers=TRIGGERS),
        "appointments": WebhookSource(
            "appointments", APPOINTMENTS_WEBHOOK, lambda t, b: appointment_id_of(b)
        ),
    }
    bodies = [(d, r) for d in sources for r in draw(d, n, seed=rng.randrange(1000))]
    ten_mb = b'{"id": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    bodies += [(d, Hostile(d, "ten-megabytes", ten_mb, None, ())) for d in sources]
    taken: list[tuple[str, Hostile]] = []
    statuses: Counter[str] = Counter()
    with httpx.Client(base_url=w.url, timeout=60) as client:
        for domain, r in bodies:
            trigger = r.headers[0][1].decode("utf-8", "replace") if domain == "vome" and r.headers else None
            if domain == "vome" and (trigger is None or "/" in trigger or not trigger.isprintable()):
                trigger = rng.choice([*TRIGGERS, "booking.exploded"])
            path = VOME_WEBHOOK.format(trigger=trigger) if domain == "vome" else APPOINTMENTS_WEBHOOK
            body = r.value or b""
            answer = client.post(path, content=body)
            want = check_delivery(sources[domain], trigger, body, None, None, WEBHOOK_MAX).status
            statuses[str(answer.status_code)] += 1
            assert answer.status_code == want, (domain, r.mutation, answer.status_code, want)
            if answer.status_code == 202:
                headers = ((EVENT_TYPE_HEADER, trigger.encode()),) if trigger else ()
                taken.append((domain, Hostile(domain, r.mutation, body, None, headers)))
    assert statuses["413"] >= 2  # the 10 MB bodies
    return taken, statuses


def deadletters(d: Deployment, domain: str) -> list[Any]:
    raw = d.topic(f"{domain}.raw").encode()
    return [
        r for r in read_all(d.settings, f"{domain}.deadletter") if dict(r.headers)[dl.SOURCE_TOPIC] == raw
    ]


def hostile_run(d: Deployment, per_domain: int) -> dict[str, dict[str, Any]]:
    w = d.worker().start()
    taken, statuses = webhook_share(w, random.Random(5), per_domain // 10)
    expected: dict[str, list[Hostile]] = {
        domain: [r for dd, r in taken if dd == domain] for domain in DOMAINS
    }
    fresh = Mix.make(seed=77)
    mixer = random.Random(77)
    for domain in DOMAINS:
        # Distinct good records from the domain's generator, interleaved: the hostile draws' good ones are
        # mostly the same few seeds again, which dedupe absorbs before any output.
        records = draw(domain, per_domain, seed=55)
        for key, value, headers in fresh.records(domain):
            records.insert(
                mixer.randrange(len(records) + 1), Hostile(domain, "generated", value, key, tuple(headers))
            )
        produce(d.settings, f"{domain}.raw", [(r.key, r.value, list(r.headers)) for r in records])
        expected[domain] += records
    sent = sum(len(v) for v in expected.values())
    wait_until(lambda: events_in(w) >= sent, timeout=180, interval=1, what=f"{sent} raw records consumed")
    out: dict[str, dict[str, Any]] = {}
    for domain, records in expected.items():
        verdicts = [verdict(domain, r) for r in records]
        want = Counter(
            (r.value, v.outcome) for r, v in zip(records, verdicts, strict=True) if v.outcome != ACCEPTED
        )
        good = sum(v.outcome == ACCEPTED for v in verdicts)
        got: Counter[tuple[bytes | None, str]] = Counter()

        def settled(domain: str = domain, want: Counter[Any] = want, got: Counter[Any] = got) -> bool:
            got.clear()
            got.update((r.value, dict(r.headers)[dl.CODE].decode()) for r in deadletters(d, domain))
            return sum(got.values()) >= sum(want.values())

        with contextlib.suppress(TimeoutError):
            wait_until(settled, timeout=60, interval=1, what=f"{domain} dead letters")
        accepted = w.metric("switchyard_events_accepted_total", domain=domain)
        deduped = w.metric("switchyard_dedupe_hits_total", domain=domain)
        out[domain] = {
            "sent": len(records),
            "over_webhook": sum(1 for dd, _ in taken if dd == domain),
            "processed": int(w.metric("switchyard_events_in_total", domain=domain)),
            "accepted": int(accepted),
            "deduped": int(deduped),
            "expected_good": good,
            "dead_lettered": sum(got.values()),
            "lost": sum((want - got).values()) + max(0, good - int(accepted + deduped)),
            "duplicated": sum((got - want).values()),
            "internal_errors": sum(n for (_, code), n in got.items() if code == INTERNAL),
            "crashes": 0,
        }
    crashes = crashed_agents(w) + (w.proc is not None and w.proc.poll() is not None)
    out["total"] = {
        k: sum(v[k] for v in out.values())
        for k in ("sent", "processed", "lost", "duplicated", "dead_lettered")
    } | {"crashes": crashes, "webhook_statuses": dict(statuses)}
    return out


def check(out: dict[str, dict[str, Any]]) -> None:
    assert out["total"]["crashes"] == 0
    for domain in DOMAINS:
        figures = out[domain]
        assert figures["internal_errors"] == 0, domain
        assert (figures["lost"], figures["duplicated"]) == (0, 0), (domain, figures)
        assert figures["accepted"] + figures["deduped"] == figures["expected_good"], (domain, figures)


def test_a_thousand_hostile_records_per_domain_through_a_worker(
    deploy: Callable[..., Deployment], kafka_bootstrap: str
) -> None:
    out = hostile_run(deploy(kafka_bootstrap), per_domain=1000)
    for part, figures in out.items():
        record_scenario("5-hostile-worker", part, **figures)
    check(out)


@pytest.mark.slow
def test_ten_thousand_hostile_records_per_domain_through_a_worker(
    deploy: Callable[..., Deployment], kafka_bootstrap: str
) -> None:
    out = hostile_run(deploy(kafka_bootstrap), per_domain=10_000)
    for part, figures in out.items():
        record_scenario("5-hostile-worker-long", part, **figures)
    check(out)
