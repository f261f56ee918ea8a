"""Variant Q from outside: the Quix Streams application of ``bench/quixapp.py`` draining the same backlog as C.

Measured like C (``bench/pipeline.py``): its own process, the drain from its first output to its last (its
repartition records count as outputs, as C's feed records do), CPU from ``/proc`` interpolated from the first
output to the last output or changelog record, peak RSS from ``VmHWM``, and the run ends when its group has
committed the end of the raw topic and outputs and changelogs have stayed quiet for 2 s. Quix writes a
checkpoint's changelog records (every 5 s) after the outputs, so its table writes often trail the drain: the
rate leaves them out, the CPU figure pays for them (with the near-idle wait before the checkpoint).

One difference in how the instants are read: Quix produces a record with the timestamp of the input record it
came from, not the time it was sent, so Q's topics are created with ``LogAppendTime`` and the broker stamps each
record as it appends it (same host clock; for C the producer's stamp at send is within milliseconds of that).
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field

from aiokafka.admin import NewTopic

from app.core.admin import partitions_of
from app.core.catalog import Catalog
from app.core.records import DomainRules, TableRule
from app.paths import ROOT
from app.procs import stop_process
from app.settings import Settings
from bench.kafka import (
    admin,
    consumer,
    partitions,
    wait_consumed,
    wait_leaders,
    wait_quiet,
)
from bench.pipeline import PipelineResult, sample_cpu, window
from bench.procstat import CpuTrace, peak_rss_mb
from bench.scenarios import Scenario
from bench.worker import Deployment


def available() -> str | None:
    """None when Q can run here, else why not (the ``[bench]`` extra brings ``quixstreams``)."""
    if importlib.util.find_spec("quixstreams") is None:
        return "quixstreams not installed (pip install -e '.[bench]')"
    return None


def rekeyed_tables(catalog: Catalog, rules: DomainRules) -> list[TableRule]:
    """Tables fed by a ``feed`` topic that stage one writes: in Quix these are ``group_by`` on the emit's key."""
    found = []
    for t in rules.tables:
        spec = catalog.topics.get(t.source_topic)
        if spec is not None and spec.role == "feed" and "stage one" in (spec.sent_by or ""):
            found.append(t)
    return found


def written_topics(catalog: Catalog, rules: DomainRules) -> list[str]:
    """Catalog names Q writes: everything the worker writes except the feeds ``group_by`` replaces."""
    skip = {t.source_topic for t in rekeyed_tables(catalog, rules)}
    mine = [t.name for t in catalog.topics.values() if t.domain == rules.name and t.role != "raw"]
    crm = [t.name for t in catalog.of_domain("crm", "commands")]
    return [n for n in [*mine, *crm] if n not in skip]


@dataclass
class PeerResult(PipelineResult):
    #: records per catalog topic Q wrote, read back (read committed): what the smoke test compares with B
    outputs: Counter[str] = field(default_factory=Counter)


def repartition_topics(group: str, raw_topic: str, catalog: Catalog, rules: DomainRules) -> list[str]:
    """The names Quix gives the ``group_by`` topics of :func:`bench.quixapp.build`:
    ``repartition__<group>--<stream id = raw topic>--<operation = table name>``."""
    return [f"repartition__{group}--{raw_topic}--{t.name}" for t in rekeyed_tables(catalog, rules)]


def changelog_topics(
    group: str, raw_topic: str, catalog: Catalog, rules: DomainRules, settings: Settings
) -> list[str]:
    """The names Quix gives the changelogs of :func:`bench.quixapp.build`'s stores (one ``default`` store per
    stateful dataframe): ``changelog__<group>--<stream id>--default``, where a repartition topic's stream id
    drops the group and uses dots."""
    rekeyed = rekeyed_tables(catalog, rules)
    streams = [raw_topic, *(f"repartition.{raw_topic}.{t.name}" for t in rekeyed)]
    streams += [settings.topic(t.source_topic) for t in rules.tables if t not in rekeyed]
    return [f"changelog__{group}--{s}--default" for s in streams]


async def create_topics(
    settings: Settings, catalog: Catalog, rules: DomainRules, repartition: list[str], changelogs: list[str]
) -> None:
    """Q's catalog topics (as the catalog configures them), repartition topics and changelogs (compacted, as
    Quix makes them), all ``LogAppendTime``.

    Created here rather than by Quix so that the broker stamps every record Q writes, repartition and changelog
    records included: they are Q's counterparts of C's feed and changelog records, which C's drain window counts
    too. Quix writes a checkpoint's changelog records after the outputs, so without them the window would end
    before Q's table writes. Quix uses topics that exist as they are."""
    append = {"message.timestamp.type": "LogAppendTime"}
    specs = [t for t in catalog.topics.values() if t.domain in (rules.name, "crm") and t.role != "raw"]
    new = [
        NewTopic(
            settings.topic(t.name),
            num_partitions=partitions_of(t, settings),
            replication_factor=settings.topic_replication,
            topic_configs={**t.kafka_config(), **append},
        )
        for t in specs
    ]
    new += [
        NewTopic(n, settings.topic_partitions, settings.topic_replication, topic_configs=append)
        for n in repartition
    ]
    compact = {**append, "cleanup.policy": "compact"}
    new += [
        NewTopic(n, settings.topic_partitions, settings.topic_replication, topic_configs=compact)
        for n in changelogs
    ]
    client = admin(settings)
    await client.start()
    try:
        await client.create_topics(new)
    finally:
        await client.close()
    await wait_leaders(settings, [t.name for t in new])


async def count_records(dep: Deployment, names: list[str]) -> Counter[str]:
    """Records (not offsets: transaction markers take offsets too) per topic, read committed."""
    settings = dep.settings
    tps = await partitions(settings, names)
    c = consumer(settings, max_poll_records=2000)
    await c.start()
    found: Counter[str] = Counter()
    try:
        if not tps:
            return found
        c.assign(tps)
        ends = await c.end_offsets(tps)
        open_ = {tp for tp in tps if ends[tp] > 0}
        deadline = asyncio.get_running_loop().time() + 60
        while open_ and asyncio.get_running_loop().time() < deadline:
            batch = await c.getmany(timeout_ms=500)
            for tp, recs in batch.items():
                found[tp.topic] += len(recs)
            open_ = {tp for tp in open_ if await c.position(tp) < ends[tp]}
        return found
    finally:
        await c.stop()


async def drain(
    dep: Deployment,
    catalog: Catalog,
    scenario: Scenario,
    raw_topic: str,
    records: int,
    timeout: float = 600.0,
) -> PeerResult:
    """Q's own topics under ``dep``'s prefix, then the Quix app on ``raw_topic`` (C's backlog) until drained."""
    rules = scenario.rules
    settings = dep.settings
    group = dep.name
    names = {n: settings.topic(n) for n in written_topics(catalog, rules)}
    repartition = repartition_topics(group, raw_topic, catalog, rules)
    changelogs = changelog_topics(group, raw_topic, catalog, rules, settings)
    await create_topics(settings, catalog, rules, repartition, changelogs)
    timed = [*names.values(), *repartition]
    log = dep.tmp / "quix.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; its waits are awaited
            [sys.executable, "-m", "bench.quixapp", rules.name, raw_topic, group, str(dep.tmp / "state")],
            env=dep.environ(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
        )
    trace = CpuTrace(proc.pid)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_cpu([trace], stop))

    def check() -> None:
        if proc.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"quix app exited with {proc.returncode}; log:\n{tail}")

    try:
        waiting = asyncio.create_task(wait_consumed(settings, group, raw_topic, timeout))
        while not waiting.done():
            check()
            await asyncio.sleep(0.5)
        await waiting
        await wait_quiet(settings, [*timed, *changelogs], quiet=2.0, timeout=timeout)
        check()
        drained = await window(settings, timed, changelogs)
        if drained is None:
            raise RuntimeError(f"{rules.name}: the quix app wrote no output for {records} records")
        cpu = trace.between(drained.first, drained.settled)
        rss = peak_rss_mb(proc.pid)
    finally:
        stop.set()
        await sampler
        await asyncio.to_thread(stop_process, proc)
    written = await count_records(dep, list(names.values()))
    back = {real: name for name, real in names.items()}
    return PeerResult(
        records=records,
        seconds=max(drained.last - drained.first, 1e-3),
        cpu_seconds=cpu,
        rss_mb=rss,
        workers=1,
        outputs=Counter({back[t]: k for t, k in written.items()}),
    )


def internal_prefixes(dep: Deployment) -> list[str]:
    """Quix names its own topics ``changelog__<group>--...`` and ``repartition__<group>--...`` (group = ``dep.name``)."""
    return [f"changelog__{dep.name}--", f"repartition__{dep.name}--"]
