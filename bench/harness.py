"""``switchyard bench``: passthrough vs plain vs pipeline vs peer per domain, latency, scaling, CRM, recovery.

Every figure that matters is a ratio of variants run side by side, alternated (A B C Q A B C Q ...), on the same
broker in the same run, so a noisy shared machine moves all of them alike. Each variant gets fresh topics and a
fresh consumer group; every run's topics are deleted before the next. Progress goes to stderr; stdout carries
the result (one JSON object with ``--json``). Results are also written to ``bench/results/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.core.catalog import Catalog, catalog_of
from app.settings import Settings
from bench import peer
from bench.kafka import create, delete_prefix, preload
from bench.latency import LatencyProbe, knee
from bench.loops import LoopResult, passthrough, plain
from bench.otlpsink import OtlpSink
from bench.peer import PeerResult
from bench.pipeline import PipelineResult, drain, prepare
from bench.report import goals, render_table
from bench.scenarios import Scenario, distinct_accepted, scenarios
from bench.worker import Deployment

RESULTS = Path(__file__).resolve().parent / "results"
FRACTIONS = (0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class Round:
    """One A B C Q round on one backlog; ``q`` is None where Quix Streams is not installed."""

    a: LoopResult
    b: LoopResult
    c: PipelineResult
    q: PeerResult | None

    def as_dict(self) -> dict[str, Any]:
        a, b, c, q = self.a, self.b, self.c, self.q
        return {
            "passthrough_eps": round(a.eps, 1),
            "plain_eps": round(b.eps, 1),
            "pipeline_eps": round(c.eps, 1),
            "pipeline_seconds": round(c.seconds, 2),
            "cpu_us_per_event": None if c.cpu_us_per_event is None else round(c.cpu_us_per_event),
            "rss_mb": None if c.rss_mb is None else round(c.rss_mb, 1),
            "peer_eps": None if q is None else round(q.eps, 1),
            "peer_seconds": None if q is None else round(q.seconds, 2),
            "peer_cpu_us_per_event": None
            if q is None or q.cpu_us_per_event is None
            else round(q.cpu_us_per_event),
            "peer_rss_mb": None if q is None or q.rss_mb is None else round(q.rss_mb, 1),
            "passthrough_records": a.records,
            "plain_records": b.records,
            "plain_outputs": {t.split(".", 1)[1]: k for t, k in sorted(b.outputs.items())},
            "peer_outputs": None if q is None else dict(sorted(q.outputs.items())),
        }


@dataclass(frozen=True)
class Plan:
    mode: str
    #: backlog per domain where a run wants its own (the smoke test); else the traffic source's quick or full size
    records: dict[str, int]
    iterations: int
    step_seconds: float
    scaling_records: int | None
    recovery_keys: int
    crm_commands: int
    crm_contacts: int
    table_memory_rounds: int
    profile: bool


QUICK = Plan(
    mode="quick",
    records={},
    iterations=1,
    step_seconds=3.0,
    scaling_records=None,
    recovery_keys=100_000,
    crm_commands=4000,
    crm_contacts=1000,
    table_memory_rounds=10,
    profile=False,
)
FULL = Plan(
    mode="full",
    records={},
    iterations=3,
    step_seconds=10.0,
    scaling_records=5000,
    recovery_keys=100_000,
    crm_commands=20000,
    crm_contacts=5000,
    table_memory_rounds=25,
    profile=True,
)


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def broker() -> Iterator[tuple[str, str]]:
    """``(bootstrap, kafka version)``: ``$SWITCHYARD_BROKER`` as is, else an embedded broker for this run."""
    external = os.environ.get("SWITCHYARD_BROKER", "").strip()
    if external:
        yield external, "external"
        return
    from app.broker import EmbeddedBroker

    with tempfile.TemporaryDirectory(prefix="switchyard-bench-kafka-") as data:
        b = EmbeddedBroker(data_dir=Path(data), heap="1g")
        say(f"starting embedded Kafka {b.version}")
        try:
            yield b.start(), b.version
        finally:
            b.close()


class Bench:
    def __init__(self, plan: Plan, bootstrap: str, tmp: Path) -> None:
        self.plan = plan
        self.bootstrap = bootstrap
        self.tmp = tmp
        self.run_id = uuid.uuid4().hex[:6]
        self.catalog: Catalog = catalog_of(Settings())
        self.scenarios = scenarios(self.catalog)
        self.settings = Settings(broker=bootstrap)
        self.peer_skipped = peer.available()
        #: extra environment of every worker this run starts (``--trace-sample``: the OTEL_* variables)
        self.worker_env: dict[str, str] = {}

    def deployment(self, name: str, domain: str) -> Deployment:
        return Deployment(self.bootstrap, name, self.tmp / name, SWITCHYARD_DOMAINS=domain, **self.worker_env)

    # ---- one A B C Q round --------------------------------------------------------------------------------
    async def round(
        self, scenario: Scenario, records: list[Any], index: int, profile: Path | None = None
    ) -> Round:
        base = f"bench-{self.run_id}-{scenario.name}-{index}"
        n = len(records)
        dep = self.deployment(f"{base}-c", scenario.name)
        peer_dep = self.deployment(f"{base}-q", scenario.name)
        try:
            await prepare(dep, self.catalog, scenario.rules, scenario.exactly_once)
            raw = dep.settings.topic(self.catalog.raw_topic(scenario.name).name)
            await preload(self.settings, raw, records)
            await create(self.settings, [f"{base}-a.out"])
            a = await passthrough(self.settings, raw, f"{base}-a.out", f"{base}-a", n, 300)
            say(f"{scenario.name} #{index} A passthrough {a.eps:,.0f} ev/s")
            out = Settings(broker=self.bootstrap, topic_prefix=f"{base}-b.")
            await prepare(
                self.deployment(f"{base}-b", scenario.name),
                self.catalog,
                scenario.rules,
                False,
                changelogs=False,
            )
            dl = self.catalog.deadletter_topic(scenario.name).name
            compacted = self.catalog.compacted_topics()
            b = await plain(self.settings, scenario.rules, dl, out, raw, f"{base}-b", n, 300, compacted)
            say(f"{scenario.name} #{index} B plain {b.eps:,.0f} ev/s")
            c = await drain(
                dep, self.catalog, scenario.name, n, exactly_once=scenario.exactly_once, profile_to=profile
            )
            say(
                f"{scenario.name} #{index} C pipeline {c.eps:,.0f} ev/s, {c.cpu_us_per_event or 0:,.0f} us CPU/event"
            )
            q: PeerResult | None = None
            if self.peer_skipped is None:
                q = await peer.drain(peer_dep, self.catalog, scenario, raw, n)
                say(
                    f"{scenario.name} #{index} Q quix {q.eps:,.0f} ev/s, {q.cpu_us_per_event or 0:,.0f} us CPU/event"
                )
            return Round(a, b, c, q)
        finally:
            await delete_prefix(self.settings, base)
            for prefix in peer.internal_prefixes(peer_dep):
                await delete_prefix(self.settings, prefix)

    async def scenario(self, scenario: Scenario, stamp: str) -> dict[str, Any]:
        n = self.plan.records.get(scenario.name) or scenario.records(self.plan.mode)
        say(f"{scenario.name}: generating {n} records")
        records = scenario.generate(random.Random(20250602), n)
        rounds = []
        for i in range(self.plan.iterations):
            prof = (
                RESULTS / f"{stamp}-{scenario.name}-profile.raw"
                if self.plan.profile and i == 0 and scenario.name == next(iter(self.scenarios))
                else None
            )
            rounds.append(await self.round(scenario, records, i, prof))
        a_eps = statistics.median(r.a.eps for r in rounds)
        b_eps = statistics.median(r.b.eps for r in rounds)
        c_eps = statistics.median(r.c.eps for r in rounds)
        cpu = [r.c.cpu_us_per_event for r in rounds if r.c.cpu_us_per_event is not None]
        rss = [r.c.rss_mb for r in rounds if r.c.rss_mb is not None]
        peers = [r.q for r in rounds if r.q is not None]
        q_eps = statistics.median(q.eps for q in peers) if peers else None
        q_cpus = [q.cpu_us_per_event for q in peers if q.cpu_us_per_event is not None]
        q_cpu = statistics.median(q_cpus) if q_cpus else None
        c_cpu = statistics.median(cpu) if cpu else None
        latency = await self.latency(scenario, c_eps)
        at_half = next((s for s in latency["steps"] if s["fraction"] == 0.5), None)
        return {
            "description": scenario.description,
            "records": n,
            "avg_record_bytes": round(sum(len(v or b"") for _, v, _ in records) / n),
            "passthrough_eps": round(a_eps, 1),
            "plain_eps": round(b_eps, 1),
            "pipeline_eps": round(c_eps, 1),
            "ratio_plain": round(c_eps / b_eps, 3) if b_eps else None,
            "ratio_passthrough": round(c_eps / a_eps, 3) if a_eps else None,
            "cpu_us_per_event": None if c_cpu is None else round(c_cpu),
            "peer_eps": None if q_eps is None else round(q_eps, 1),
            "peer_cpu_us_per_event": None if q_cpu is None else round(q_cpu),
            # C/Q as C/B: throughput of the worker over the peer's on the same backlog (>= 1: C is faster)
            "ratio_peer": round(c_eps / q_eps, 3) if q_eps else None,
            # the same per core: the peer's CPU per event over the worker's (>= 1: C spends less)
            "ratio_peer_cpu": round(q_cpu / c_cpu, 3) if q_cpu and c_cpu else None,
            "peer_rss_mb": max((round(q.rss_mb, 1) for q in peers if q.rss_mb is not None), default=None),
            "peer_skipped": self.peer_skipped,
            "p50_ms": at_half["p50_ms"] if at_half else None,
            "p99_ms": at_half["p99_ms"] if at_half else None,
            "rss_mb": round(max(rss), 1) if rss else None,
            "exactly_once": scenario.exactly_once,
            "latency": latency,
            "rounds": [r.as_dict() for r in rounds],
            "profile": next((r.c.profile for r in rounds if r.c.profile), None),
        }

    # ---- latency ------------------------------------------------------------------------------------------
    async def latency(self, scenario: Scenario, max_eps: float) -> dict[str, Any]:
        need = int(sum(FRACTIONS) * max(max_eps, 1.0) * self.plan.step_seconds * 1.2) + 50
        say(f"{scenario.name}: latency at {', '.join(f'{f:.0%}' for f in FRACTIONS)} of {max_eps:,.0f} ev/s")
        pool = distinct_accepted(scenario, scenario.generate(random.Random(7), int(need * 1.3)))
        name = f"bench-{self.run_id}-{scenario.name}-lat"
        dep = self.deployment(name, scenario.name)
        try:
            await prepare(dep, self.catalog, scenario.rules, scenario.exactly_once)
            worker = dep.worker("--no-create-topics").start()
            await asyncio.to_thread(worker.wait_ready, 120)
            settings = dep.settings
            probe = LatencyProbe(
                settings,
                settings.topic(self.catalog.raw_topic(scenario.name).name),
                [settings.topic(t) for t in scenario.primary_topics],
                scenario.source.event_id_of,
            )
            # one record first: the first event through a fresh worker pays for lazy imports and connections
            await probe.run(pool[:1], 1.0, (1.0,), 1.0)
            steps = await probe.run(pool[1:], max_eps, FRACTIONS, self.plan.step_seconds)
            worker.check_alive()
        finally:
            await asyncio.to_thread(dep.stop_all)
            await delete_prefix(self.settings, name)
        found = knee(steps)
        return {
            "step_seconds": self.plan.step_seconds,
            "steps": [s.as_dict() for s in steps],
            "knee_fraction": found,
            "knee_eps": None if found is None else round(found * max_eps, 1),
        }

    # ---- scaling, recovery, CRM ---------------------------------------------------------------------------
    async def scaling(self) -> dict[str, Any]:
        n = self.plan.scaling_records
        if n is None:
            return {"skipped": "full run only (bench without --quick)"}
        # the first at-least-once domain of the catalog: scaling measures the consumer group, not exactly-once
        scenario = next(s for s in self.scenarios.values() if not s.exactly_once)
        records = scenario.generate(random.Random(11), n)
        out: dict[str, Any] = {"scenario": scenario.name, "records": n, "partitions": 6}
        for workers in (1, 2):
            name = f"bench-{self.run_id}-scale{workers}"
            dep = self.deployment(name, scenario.name)
            try:
                await prepare(dep, self.catalog, scenario.rules, False)
                raw = dep.settings.topic(self.catalog.raw_topic(scenario.name).name)
                await preload(self.settings, raw, records)
                c = await drain(dep, self.catalog, scenario.name, n, exactly_once=False, workers=workers)
            finally:
                await delete_prefix(self.settings, name)
            say(f"scaling: {workers} worker(s) {c.eps:,.0f} ev/s")
            out[f"workers_{workers}_eps"] = round(c.eps, 1)
            out[f"workers_{workers}_cpu_us_per_event"] = (
                None if c.cpu_us_per_event is None else round(c.cpu_us_per_event)
            )
        out["speedup"] = (
            round(out["workers_2_eps"] / out["workers_1_eps"], 3) if out["workers_1_eps"] else None
        )
        return out

    async def table_memory(self) -> dict[str, Any]:
        from bench.tablememory import measure

        rounds = self.plan.table_memory_rounds
        say(f"table memory: 40 RocksDB stores, {rounds} rounds, Faust's defaults vs the shared budget")
        result = await asyncio.to_thread(measure, rounds=rounds)
        say(f"table memory: {result['faust_end_mb']} MB vs {result['shared_end_mb']} MB at the end")
        return result

    async def recovery(self) -> dict[str, Any]:
        from bench.recovery import measure

        name = f"bench-{self.run_id}-recovery"
        say(f"recovery: {self.plan.recovery_keys:,} keys")
        try:
            result = await measure(self.bootstrap, name, self.tmp, self.plan.recovery_keys)
        finally:
            await delete_prefix(self.settings, name)
        say(f"recovery: {result.rebuild_s:.1f} s")
        return result.as_dict()

    async def crm(self) -> dict[str, Any]:
        return await asyncio.to_thread(crm_backlog, self.plan.crm_commands, self.plan.crm_contacts)


def crm_backlog(commands: int, contacts: int, limit: int = 20, window: float = 1.0) -> dict[str, Any]:
    """The CRM figures through ``app.sinks.crm.benchmark.run_backlog`` (the sink, HubSpot adapter and reference
    CRM). The backlog needs several windows of budget; ``budget_used`` is the share of it spent in the whole
    windows the backlog lasted (see ``CallCounter.budget_used``)."""
    try:
        from app.sinks.crm.benchmark import run_backlog
    except ImportError as exc:
        return {"contacts_per_call": None, "budget_used": None, "reason": f"no CRM benchmark: {exc}"}
    say(f"crm: {commands:,} commands over {contacts:,} contacts, budget {limit} calls / {window:g} s")
    raw = run_backlog(n_commands=commands, n_contacts=contacts, limit=limit, window=window)
    return {
        "contacts_per_call": round(raw["contacts_per_call"], 2),
        "distinct_contacts_per_call": round(raw["distinct_contacts_per_call"], 2),
        "commands_per_call": round(raw["commands_per_call"], 2),
        "calls_by_op": raw["calls_by_op"],
        "budget_used": None if raw["budget_used"] is None else round(raw["budget_used"], 3),
        "calls": raw["calls"],
        "seconds": round(raw["seconds"], 2),
        "limit": limit,
        "window_s": window,
        "max_calls_in_window": raw["max_calls_in_window"],
        "state_matches": raw["state_matches"],
        "dead_letters": raw["dead_letters"],
    }


def machine(kafka: str) -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "kafka": kafka,
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


#: the parts ``--only`` can pick besides the scenarios, in the order a full run takes them
EXTRAS = ("scaling", "recovery", "table_memory", "crm")


def parts() -> tuple[str, ...]:
    """The parts ``--only`` can pick: every catalog domain's scenario, then the extras, in the order a full run
    takes them."""
    return (*scenarios(catalog_of(Settings())), *EXTRAS)


async def _run(
    plan: Plan,
    bootstrap: str,
    kafka: str,
    stamp: str,
    only: frozenset[str] = frozenset(),
    trace_sample: float | None = None,
) -> dict[str, Any]:
    """Every part, or those in ``only``. With ``trace_sample``, every worker traces that share of its records
    (``parentbased_traceidratio``) and exports them over OTLP/HTTP to a sink that drops them
    (:mod:`bench.otlpsink`): the workers pay the whole export, no backend's CPU is counted."""

    def wanted(part: str) -> bool:
        return not only or part in only

    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        bench = Bench(plan, bootstrap, Path(tmp))
        result: dict[str, Any] = {
            "mode": plan.mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(kafka),
            "scenarios": {},
        }
        sink = OtlpSink() if trace_sample is not None else None
        if sink is not None:
            bench.worker_env = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint,
                "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                "OTEL_TRACES_SAMPLER_ARG": str(trace_sample),
            }
        try:
            for name, scenario in bench.scenarios.items():
                if wanted(name):
                    result["scenarios"][name] = await bench.scenario(scenario, stamp)
            if wanted("scaling"):
                result["scaling"] = await bench.scaling()
            if wanted("recovery"):
                result["recovery"] = await bench.recovery()
            if wanted("table_memory"):
                result["table_memory"] = await bench.table_memory()
            if wanted("crm"):
                result["crm"] = await bench.crm()
        finally:
            if sink is not None:
                sink.close()
                result["tracing"] = {
                    "sample": trace_sample,
                    "otlp_requests": sink.requests,
                    "otlp_bytes": sink.bytes,
                }
        result["goals"] = goals(result)
        return result


def write_results(result: dict[str, Any], stamp: str) -> list[Path]:
    """One file per scenario (plus crm, recovery, scaling, table_memory), each carrying the run's machine and
    mode."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    head = {k: result[k] for k in ("mode", "started_at", "machine")}
    suffix = "" if result["mode"] == "full" else f"-{result['mode']}"
    sections = {**result["scenarios"], **{k: result[k] for k in EXTRAS if k in result}}
    written = []
    for name, body in sections.items():
        path = RESULTS / f"{stamp}-{name}{suffix}.json"
        path.write_bytes(orjson.dumps({**head, "scenario": name, **body}, option=orjson.OPT_INDENT_2))
        written.append(path)
    path = RESULTS / f"{stamp}-summary{suffix}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    return [*written, path]


def run_bench(
    quick: bool, as_json: bool, only: frozenset[str] = frozenset(), trace_sample: float | None = None
) -> int:
    """The whole bench, or only the parts named in ``only`` (:func:`parts`): one part alone takes minutes, which
    is what a before/after comparison of one change needs, run several times side by side."""
    known = parts()
    unknown = only - set(known)
    if unknown:
        raise ValueError(f"unknown bench parts {sorted(unknown)}; known: {', '.join(known)}")
    plan = QUICK if quick else FULL
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M")
    began = time.monotonic()
    try:
        with broker() as (bootstrap, kafka):
            result = asyncio.run(_run(plan, bootstrap, kafka, stamp, only, trace_sample))
    except Exception as exc:  # the exit code and one line say it failed; the traceback says where
        import traceback

        traceback.print_exc(file=sys.stderr)
        print(f"bench failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    result["wall_seconds"] = round(time.monotonic() - began, 1)
    for path in write_results(result, stamp):
        say(f"wrote {path.relative_to(RESULTS.parent.parent)}")
    if as_json:
        print(orjson.dumps(result).decode())
    else:
        print(render_table(result))
    return 0
