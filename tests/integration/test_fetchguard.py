"""The fetch guard (app/core/runtime/fetchguard.py) against the broker: a Faust worker whose partitions are sought back to
their committed offsets again and again while it is busy (what every rebalance does) still processes every record
and commits to the end. Faust's own consumer fails here: a batch fetched before a seek is delivered after it,
and the refetches of the records between the seek and that batch are dropped as already read, so the commit stalls
behind them for good (or, where a gap gets booked across them, passes them unprocessed). ``SWITCHYARD_FETCHGUARD_SCHEME=kafka`` runs the same worker on Faust's consumer, to
see it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.runtime.fetchguard import SCHEME
from tests.faust_run import FaustRun
from tests.kafka_helpers import committed_offsets, create_topics, produce, wait_for

pytestmark = pytest.mark.integration

Names = Callable[[str], str]

SEEKING_APP = """
import asyncio, json, os, sys
from pathlib import Path

import faust

from app.core.runtime import fetchguard

fetchguard.install()
out = Path(os.environ["COMPAT_OUT"])
app = faust.App(
    os.environ["COMPAT_APP_ID"],
    broker=os.environ["GUARD_SCHEME"] + "://" + os.environ["COMPAT_BOOTSTRAP"],
    web_enabled=False,
    autodiscover=False,
    topic_partitions=2,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=0.2,
    stream_buffer_maxsize=64,
)
source = app.topic(os.environ["COMPAT_SOURCE"], key_serializer="raw", value_serializer="raw")
seeks = int(os.environ["GUARD_SEEKS"])


@app.agent(source)
async def note(stream):
    async for event in stream.events():
        await asyncio.sleep(0.0005)  # slow enough that fetched batches wait in the buffer
        with out.open("a") as f:
            f.write(json.dumps({"p": event.message.partition, "o": event.message.offset}) + "\\n")


@app.task
async def seek_while_busy():
    for _ in range(seeks):
        await asyncio.sleep(0.25)
        await app.consumer.perform_seek()
    with out.open("a") as f:
        f.write(json.dumps({"seeks": seeks, "refetches": getattr(app.consumer, "refetches", None)}) + "\\n")


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "info"]
    app.main()
"""

RECORDS = 2000


async def test_a_busy_worker_sought_back_again_and_again_processes_and_commits_every_record(
    kafka_bootstrap: str, unique_name: Names, tmp_path: Path, faust_runs: list[FaustRun]
) -> None:
    source, group = unique_name("guard-src"), unique_name("guard")
    await create_topics(kafka_bootstrap, [source], partitions=2)
    await produce(kafka_bootstrap, source, [(str(i % 2).encode(), b"x", []) for i in range(RECORDS)])
    env = {
        "COMPAT_BOOTSTRAP": kafka_bootstrap,
        "COMPAT_APP_ID": group,
        "COMPAT_SOURCE": source,
        "GUARD_SCHEME": os.environ.get("SWITCHYARD_FETCHGUARD_SCHEME", SCHEME),
        "GUARD_SEEKS": "12",
    }
    faust_runs.append(FaustRun.launch(SEEKING_APP, tmp_path, env))
    run = faust_runs[-1]
    await wait_for(lambda: any("seeks" in line for line in run.lines()), 120, interval=0.2, what="the seeks")
    ends = {0: RECORDS // 2, 1: RECORDS // 2}

    async def all_committed() -> dict[int, int | None]:
        offsets = await committed_offsets(kafka_bootstrap, group, source, (0, 1))
        return offsets if offsets == ends else {}

    with contextlib.suppress(TimeoutError):
        await wait_for(all_committed, 60, interval=0.5, what="offsets committed to the end")
    seen = {(line["p"], line["o"]) for line in run.lines() if "p" in line}
    missing = {(p, o) for p, end in ends.items() for o in range(end)} - seen
    assert not missing, f"{len(missing)} records never processed, e.g. {sorted(missing)[:10]}"
    assert await committed_offsets(kafka_bootstrap, group, source, (0, 1)) == ends
    # and the race did happen: the guard withheld records fetched before a seek at least once
    if env["GUARD_SCHEME"] == SCHEME:
        [summary] = [line for line in run.lines() if "seeks" in line]
        assert summary["refetches"] > 0
