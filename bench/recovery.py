"""Time for a fresh worker to rebuild a table of many keys from its changelog.

The table is the test-only domain's ``totals`` (``tests/integration/testdomain``, loaded through
``SWITCHYARD_CATALOG_FILE``): the smallest table the runtime can hold, so what is timed is Faust's changelog
replay into RocksDB, not a domain's fold. Its changelog is written directly (key, JSON state; Faust's own
format, partitioned by the same default partitioner as the feed), which takes seconds where feeding 100k events
through the pipeline would take minutes. Done means the worker answers the table query for keys of every
partition with the values written, not only that it says ready.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.core.admin import ensure_topics
from app.core.catalog import load_catalog
from app.paths import ROOT
from bench.kafka import create, preload
from bench.procstat import peak_rss_mb
from bench.worker import Deployment

CATALOG = ROOT / "tests" / "integration" / "testdomain" / "catalog.yaml"


@dataclass
class RecoveryResult:
    keys: int
    ready_s: float
    answered_s: float
    baseline_ready_s: float
    rss_mb: float | None

    @property
    def rebuild_s(self) -> float:
        """Start-to-answer time minus the start-up of the same worker over an empty changelog."""
        return max(self.answered_s - self.baseline_ready_s, 0.0)

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "keys": self.keys,
            "rebuild_s": round(self.rebuild_s, 2),
            "start_to_answer_s": round(self.answered_s, 2),
            "start_to_ready_s": round(self.ready_s, 2),
            "empty_start_to_ready_s": round(self.baseline_ready_s, 2),
            "rss_mb": None if self.rss_mb is None else round(self.rss_mb, 1),
        }


def _key(i: int) -> bytes:
    return f"member-{i:07d}".encode()


async def _deployment(bootstrap: str, name: str, tmp: Path) -> Deployment:
    dep = Deployment(bootstrap, name, tmp / name, SWITCHYARD_CATALOG_FILE=str(CATALOG))
    await ensure_topics(dep.settings, load_catalog(CATALOG))
    await create(dep.settings, [f"{name}-testdomain-totals-changelog", f"{name}-testdomain-seen-changelog"])
    return dep


def _answers(url: str, probes: list[int]) -> bool:
    try:
        for i in probes:
            r = httpx.get(f"{url}/api/testdomain/{_key(i).decode()}", timeout=5, follow_redirects=True)
            if r.status_code != 200 or r.json().get("total") != i:
                return False
    except httpx.HTTPError:
        return False
    return True


async def measure(bootstrap: str, base: str, tmp: Path, keys: int, timeout: float = 300.0) -> RecoveryResult:
    empty = await _deployment(bootstrap, f"{base}-empty", tmp)
    try:
        baseline = await asyncio.to_thread(empty.worker("--no-create-topics").start().wait_ready, timeout)
    finally:
        await asyncio.to_thread(empty.stop_all)

    dep = await _deployment(bootstrap, f"{base}-full", tmp)
    changelog = f"{dep.name}-testdomain-totals-changelog"
    await preload(dep.settings, changelog, [(_key(i), b'{"total":%d}' % i, ()) for i in range(keys)])
    probes = sorted({0, keys // 2, *range(max(0, keys - 12), keys)})
    worker = dep.worker("--no-create-topics").start()
    try:
        ready = await asyncio.to_thread(worker.wait_ready, timeout)
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(_answers, worker.url, probes):
            worker.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"table not answering after {timeout}s; log:\n{worker.tail()}")
            await asyncio.sleep(0.1)
        answered = time.time() - worker.started_at
        return RecoveryResult(keys, ready, answered, baseline, peak_rss_mb(worker.pid))
    finally:
        await asyncio.to_thread(dep.stop_all)
