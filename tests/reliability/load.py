"""A steady load mixing every catalog domain, and the checkers that say what of it was lost or duplicated.

The traffic is each domain's own traffic source (redeliveries, reordering, stale updates and broken records
included) and the expectations are its oracle's references, never the rules (:mod:`app.core.traffic`). Nothing
here names a domain: a test-only domain added with ``SWITCHYARD_EXTRA_CATALOGS`` joins the mix. The checks are
Jepsen's, per domain and per output: a *lost* write is an expected output (or table answer) that is absent once
the worker has caught up; a *duplicate* is an output seen more than once. Duplicates fail a check only where the
catalog promises exactly-once (read_committed); on the at-least-once outputs a crash may replay a micro-batch, so
they are counted and reported instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from app.core import deadletter as dl
from app.core.catalog import Catalog, catalog_of
from app.core.domain import domains
from app.core.kafka import partition_count
from app.core.records import RawRecord, normalize_headers
from app.core.traffic import Answer, Traffic, TrafficRecord, Verdict, expected_dead_letters
from app.settings import Settings
from tests.worker import Deployment, Worker, produce, read_all, wait_until

Rec = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
#: The catalog the suite runs on: ``SWITCHYARD_EXTRA_CATALOGS`` adds test-only domains to the real ones.
CATALOG = catalog_of(Settings())
#: Records per domain in a mix of scale 1 (each traffic source makes about this many).
PER_DOMAIN = 400
#: A SIGKILLed worker leaves its group after the session timeout: 6 s is the broker's minimum.
FAST_FAILOVER = {"SWITCHYARD_SESSION_TIMEOUT_SECONDS": "6", "SWITCHYARD_HEARTBEAT_INTERVAL_SECONDS": "1"}


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Mix:
    """One mixed stream: every catalog domain's traffic in publishing order, each with its oracle."""

    traffic: dict[str, Traffic]

    @classmethod
    def make(cls, seed: int, scale: int = 1, catalog: Catalog | None = None) -> Mix:
        # The worker renders time-dependent answers (Lära's compliance) at its own clock; the generators end their
        # histories a day before ``now`` with the next boundaries years away, so a day-aligned ``now`` keeps a
        # seed's mix the same all day long.
        now = _today()
        return cls(
            {
                d.name: d.traffic_source().generate(
                    random.Random(f"{seed}-{d.name}"), PER_DOMAIN * scale, now
                )
                for d in domains(catalog or CATALOG)
                if d.traffic is not None
            }
        )

    def add(self, domain: str, records: Sequence[TrafficRecord], rng: random.Random) -> None:
        """``records`` at random places in ``domain``'s stream (each stream's own order kept); its oracle
        judges them with the rest."""
        stream = self.traffic[domain].records
        for record in records:
            stream.insert(rng.randint(0, len(stream)), record)

    def records(self, domain: str) -> list[Rec]:
        return [(r.key, r.value, list(r.headers)) for r in self.traffic[domain].records]

    @property
    def size(self) -> int:
        return sum(len(t.records) for t in self.traffic.values())

    def chunks(self, n: int) -> Iterator[dict[str, list[Rec]]]:
        """The stream in ``n`` slices, each holding every domain's next share (per-domain order kept)."""
        for i in range(n):
            out = {}
            for domain in self.traffic:
                records = self.records(domain)
                step = -(-len(records) // n)
                out[domain] = records[i * step : (i + 1) * step]
            yield out


def publish(d: Deployment, chunk: dict[str, list[Rec]]) -> None:
    for domain, records in chunk.items():
        if records:
            produce(d.settings, CATALOG.raw_topic(domain).name, records)


# ---- the checkers ---------------------------------------------------------------------------------------------
@dataclass
class Observed:
    """What the oracles see of a deployment: committed records of a catalog topic, and a worker's HTTP API."""

    deployment: Deployment
    worker: Worker

    def read(self, topic: str) -> list[RawRecord]:
        return [
            RawRecord(r.value, r.key, normalize_headers(r.headers), r.topic, r.partition, r.offset)
            for r in read_all(self.deployment.settings, topic)
        ]

    def get(self, path: str) -> Answer:
        return self.worker.get(path)


def stage_done(d: Deployment, domain: str) -> bool:
    """The exactly-once stage's committed offsets reached the end of every raw partition."""
    s = d.settings
    topic = s.topic(CATALOG.raw_topic(domain).name)

    async def go() -> bool:
        consumer = AIOKafkaConsumer(**s.kafka_client_options(), group_id=f"{s.app_id}-{domain}-eos")
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(await partition_count(s, topic))]
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                if ends[tp] and (await consumer.committed(tp) or 0) < ends[tp]:
                    return False
            return True
        finally:
            await consumer.stop()

    return asyncio.run(go())


def check(d: Deployment, w: Worker, domain: str, traffic: Traffic) -> Verdict:
    """One domain's verdict: the dead letters judged from the records' expected codes, the rest by its oracle.
    Where the catalog promises exactly-once, the stage must have committed everything first and a duplicate
    output or dead letter is a failure; elsewhere a crash may replay a micro-batch, so duplicates are figures."""
    verdict = Verdict(sent=len(traffic.records))
    exactly_once = CATALOG.domains[domain].exactly_once
    if exactly_once and not stage_done(d, domain):
        verdict.lost = verdict.sent
        verdict.problems.append(f"{domain}: stage one has not committed every raw record")
        return verdict
    traffic.judge(Observed(d, w), verdict)
    deadletter = CATALOG.deadletter_topic(domain).name
    dead = Counter((r.value, dict(r.headers)[dl.CODE].decode()) for r in read_all(d.settings, deadletter))
    verdict.dead_lettered = sum(dead.values())
    if exactly_once:  # every broken delivery once, redelivered copies included
        want = Counter((r.value, r.code or "") for r in traffic.records if r.code is not None)
        verdict.compare(deadletter, want, dead)
        if verdict.duplicated:
            verdict.problems.append(f"{domain}: {verdict.duplicated} duplicates under read_committed")
    else:
        want = Counter({(v, c or ""): n for (v, c), n in expected_dead_letters(traffic.records).items()})
        verdict.compare(deadletter, want, Counter(set(dead)))
    return verdict


def check_all(d: Deployment, w: Worker, mix: Mix) -> dict[str, Verdict]:
    out = {}
    for domain, traffic in mix.traffic.items():
        try:
            out[domain] = check(d, w, domain, traffic)
        except Exception as exc:  # a worker mid-restart answers nothing yet: not caught up, ask again
            out[domain] = Verdict(problems=[f"{domain}: check failed: {type(exc).__name__}"], lost=-1)
    return out


def caught_up(tallies: dict[str, Verdict]) -> bool:
    return all(t.lost == 0 and not t.problems for t in tallies.values())


def crashed_agents(w: Worker) -> int:
    """Agents Faust restarted after an exception, from the worker's log: a crash the worker survived."""
    try:
        return w.log.read_text(errors="replace").count("]: Crashed reason=")
    except OSError:
        return 0


def settle(d: Deployment, w: Worker, mix: Mix, timeout: float) -> dict[str, Verdict]:
    """Check until nothing is missing or ``timeout`` passes; the last tallies either way, so a failing run
    still reports how much was lost."""
    last: dict[str, dict[str, Verdict]] = {}

    def done() -> bool:
        last["t"] = check_all(d, w, mix)
        return caught_up(last["t"])

    with contextlib.suppress(TimeoutError):
        wait_until(done, timeout=timeout, interval=2.0, what="every output of the mix")
    return last["t"]


def events_in(w: Worker) -> float:
    try:
        return w.metric("switchyard_events_in_total")
    except Exception:  # not answering yet
        return 0.0


def figures(tallies: dict[str, Verdict], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {domain: t.figures() for domain, t in tallies.items()}
    out["total"] = {
        key: sum(t.figures()[key] for t in tallies.values())
        for key in ("sent", "processed", "lost", "duplicated", "dead_lettered")
    } | extra
    return out
