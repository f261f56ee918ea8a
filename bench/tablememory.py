"""RocksDB memory of many table partitions: Faust's per-store defaults against the worker's shared budget.

A worker holds one RocksDB store per table partition (six domains' tables x their partitions: dozens). Each
variant opens ``stores`` stores in a fresh process, then writes and reads a steady mix round after round and
records the process RSS after every round. Faust's defaults give each store its own 64 MB memtables and cache,
so RSS climbs with every round until the memtables of *every* store are full; the shared budget
(``app.core.runtime.tablestore``, ``SWITCHYARD_TABLE_MEMORY_MB``) should level off near its size. Both variants run the
same seeded workload in the same run, so the ratio of their final RSS is the figure, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.procstat import rss_mb

VALUE = b"x" * 300
KEYS = 50_000


def workload(mode: str, stores: int, rounds: int, writes: int, budget_mb: int) -> list[float]:
    """RSS (MB) of this process after each round of ``writes`` puts and as many gets per store."""
    from faust.stores.rocksdb import RocksDBOptions

    from app.core.runtime.tablestore import SharedMemoryOptions, TableMemory

    options = (
        RocksDBOptions(use_rocksdict=True)
        if mode == "faust"
        else SharedMemoryOptions(TableMemory(budget_mb), use_rocksdict=True)
    )
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-rocks-") as tmp:
        dbs = [options.open(Path(tmp) / f"store-{i}") for i in range(stores)]
        rss: list[float] = []
        for _ in range(rounds):
            for db in dbs:
                for _ in range(writes):
                    db[str(rng.randrange(KEYS)).encode()] = VALUE
                    db.get(str(rng.randrange(KEYS)).encode())
            rss.append(round(rss_mb() or 0.0, 1))
        for db in dbs:
            db.close()
    return rss


def measure(stores: int = 40, rounds: int = 15, writes: int = 1500, budget_mb: int = 64) -> dict[str, Any]:
    """Both variants, each in a process of its own (RSS is per process)."""
    out: dict[str, Any] = {"stores": stores, "rounds": rounds, "writes_per_store_round": writes}
    out["budget_mb"] = budget_mb
    for mode in ("faust", "shared"):
        cmd = [
            sys.executable,
            "-m",
            "bench.tablememory",
            mode,
            str(stores),
            str(rounds),
            str(writes),
            str(budget_mb),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[f"{mode}_rss_mb"] = json.loads(done.stdout)
    faust_end, shared_end = out["faust_rss_mb"][-1], out["shared_rss_mb"][-1]
    out["faust_end_mb"], out["shared_end_mb"] = faust_end, shared_end
    out["ratio_end"] = round(shared_end / faust_end, 3) if faust_end else None
    # growth over the second half: ~0 when memory has levelled off
    half = rounds // 2
    for mode in ("faust", "shared"):
        series = out[f"{mode}_rss_mb"]
        out[f"{mode}_growth_second_half_mb"] = round(series[-1] - series[half], 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description="one variant of the table-memory measurement (JSON on stdout)"
    )
    parser.add_argument("mode", choices=("faust", "shared"))
    parser.add_argument("stores", type=int)
    parser.add_argument("rounds", type=int)
    parser.add_argument("writes", type=int)
    parser.add_argument("budget_mb", type=int)
    a = parser.parse_args()
    print(json.dumps(workload(a.mode, a.stores, a.rounds, a.writes, a.budget_mb)))


if __name__ == "__main__":
    main()
