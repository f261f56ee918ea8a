"""Variant C: Switchyard's real worker draining a pre-loaded backlog, measured from outside.

The drain runs from the first output the worker wrote to the last one (record timestamps, stamped by the
worker's producer when it sent them), so worker start-up, group join and the harness's own polling are not
counted. CPU comes from ``/proc`` sampled during the run and interpolated from the first output to the last
output *or changelog record*, so table writes that trail the outputs are paid for (they do in Quix, variant Q,
which writes a checkpoint's changelog after its outputs; the worker writes its changelogs as it goes); memory is
the kernel's peak RSS of the worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.admin import ensure_topics
from app.core.catalog import Catalog
from app.core.records import DomainRules
from app.settings import Settings
from bench.kafka import create, edge_timestamps, named, wait_consumed, wait_leaders, wait_quiet
from bench.procstat import CpuTrace, peak_rss_mb
from bench.profile import Profiler, summarize
from bench.worker import Deployment, Worker


@dataclass
class PipelineResult:
    records: int
    seconds: float
    cpu_seconds: float | None
    rss_mb: float | None
    workers: int
    profile: dict[str, Any] | None = None

    @property
    def eps(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float | None:
        return None if self.cpu_seconds is None or not self.records else self.cpu_seconds / self.records * 1e6


def output_topics(catalog: Catalog, domain: str) -> list[str]:
    """Catalog names of everything a domain's worker writes (its CRM commands included)."""
    mine = [t.name for t in catalog.topics.values() if t.domain == domain and t.role != "raw"]
    return [*mine, *(t.name for t in catalog.of_domain("crm", "commands"))]


async def prepare(
    dep: Deployment, catalog: Catalog, rules: DomainRules, exactly_once: bool, *, changelogs: bool = True
) -> None:
    """Create the deployment's catalog topics and the changelogs of its Faust tables, and wait for leaders.

    Faust would create the changelogs itself, but on a broker that has just created the source topics it can
    read stale metadata, find "0 partitions" and crash the agent (PartitionsMismatch); created up front, they
    are simply there.
    """
    settings = dep.settings
    await ensure_topics(settings, catalog, {rules.name, "crm"})
    names = [settings.topic(t.name) for t in catalog.topics.values() if t.domain in (rules.name, "crm")]
    await wait_leaders(settings, names)
    if not changelogs:
        return
    tables = [f"{dep.name}-{rules.name}-{t.name}-changelog" for t in rules.tables]
    if not exactly_once:
        tables.append(f"{dep.name}-{rules.name}-seen-changelog")
    await create(settings, tables, partitions=settings.topic_partitions)


@dataclass(frozen=True)
class Window:
    """Instants (s) of a drain: its first and last output, and the last output or changelog record."""

    first: float
    last: float
    settled: float


async def window(settings: Settings, outputs: Sequence[str], changelogs: Sequence[str]) -> Window | None:
    """None when ``outputs`` hold no record."""
    edges = await edge_timestamps(settings, outputs)
    if edges is None:
        return None
    trailing = await edge_timestamps(settings, changelogs) if changelogs else None
    return Window(edges[0], edges[1], max(edges[1], trailing[1]) if trailing else edges[1])


def consumer_group(dep: Deployment, domain: str, exactly_once: bool) -> str:
    """The group that reads the raw topic: Faust's app id, or the exactly-once stage's own group."""
    return f"{dep.name}-{domain}-eos" if exactly_once else dep.name


async def sample_cpu(traces: Sequence[CpuTrace], stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = time.time()
        for t in traces:
            t.sample(now)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


async def drain(
    dep: Deployment,
    catalog: Catalog,
    domain: str,
    records: int,
    *,
    exactly_once: bool,
    workers: int = 1,
    timeout: float = 600.0,
    profile_to: Path | None = None,
) -> PipelineResult:
    """Start ``workers`` workers on ``dep`` (whose raw topic already holds ``records``) and time the drain."""
    settings = dep.settings
    started: list[Worker] = [dep.worker("--no-create-topics").start() for _ in range(workers)]
    traces = [CpuTrace(w.pid) for w in started]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_cpu(traces, stop))
    profiler = Profiler(started[0].pid, profile_to) if profile_to is not None else None
    try:
        raw = settings.topic(catalog.raw_topic(domain).name)
        await wait_consumed(settings, consumer_group(dep, domain, exactly_once), raw, timeout)
        changelogs = await named(settings, f"{dep.name}-", "-changelog")
        outputs = [settings.topic(n) for n in output_topics(catalog, domain)]
        await wait_quiet(settings, [*outputs, *changelogs], quiet=2.0, timeout=timeout)
        profile: dict[str, Any] | None = None
        if profiler is not None and profile_to is not None:
            error = await asyncio.to_thread(profiler.stop)
            profile = {"error": error} if error else {"file": profile_to.name, **summarize(profile_to)}
        for w in started:
            w.check_alive()
        drained = await window(settings, outputs, changelogs)
        if drained is None:
            raise RuntimeError(f"{domain}: the worker wrote no output for {records} records")
        cpu = [t.between(drained.first, drained.settled) for t in traces]
        rss = [peak_rss_mb(w.pid) for w in started]
        return PipelineResult(
            records=records,
            seconds=max(drained.last - drained.first, 1e-3),
            cpu_seconds=sum(c for c in cpu if c is not None) if any(c is not None for c in cpu) else None,
            rss_mb=max((r for r in rss if r is not None), default=None),
            workers=workers,
            profile=profile,
        )
    finally:
        stop.set()
        await sampler
        if profiler is not None:
            await asyncio.to_thread(profiler.stop)
        for w in started:
            await asyncio.to_thread(w.stop)
