"""A batch whose handling fails is neither lost nor committed (``app.core.runtime.worker.handled``).

A record's own faults are dead-lettered by the engine; what can still fail under a batch is the machinery (a
producer send, a store write). Faust's ``take_events`` acknowledges a batch when its generator closes, however the
agent's loop left it, so on Faust alone a batch whose handling raised is committed unprocessed: its records are
gone. These tests run a plain Faust worker on the guarded consumer with the runtime's own :func:`handled`, and
the same worker calling its handler bare, to show what the helper prevents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faust_run import FaustRun
from tests.kafka_helpers import committed_offsets, create_topics, produce, wait_for

pytestmark = pytest.mark.integration

Names = Callable[[str], str]

FAILING_APP = """
import json, os, sys
from functools import partial
from pathlib import Path

import faust
from prometheus_client import CollectorRegistry, Counter

from app.core.runtime import fetchguard
from app.core.runtime.worker import abandon_batches, handled, retry_pause

fetchguard.install()
out = Path(os.environ["COMPAT_OUT"])
fail_at, attempts = int(os.environ["FAIL_AT"]), int(os.environ["FAIL_ATTEMPTS"])
guarded = os.environ["FAIL_GUARDED"] == "1"
app = faust.App(
    os.environ["COMPAT_APP_ID"],
    broker=fetchguard.SCHEME + "://" + os.environ["COMPAT_BOOTSTRAP"],
    web_enabled=False,
    autodiscover=False,
    topic_partitions=1,
    topic_replication_factor=1,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=0.2,
)
source = app.topic(os.environ["COMPAT_SOURCE"], key_serializer="raw", value_serializer="raw")
retries = Counter("retries", "batch retries", ["stage"], registry=CollectorRegistry())
failures = 0


async def pause(seconds):  # the runtime's own pause, at a tenth of its waits so the test is quick
    await retry_pause(app, seconds / 10)


def note(line):
    with out.open("a") as f:
        f.write(json.dumps(line) + "\\n")


async def handle(events):
    global failures
    offsets = [e.message.offset for e in events]
    if fail_at in offsets and (attempts < 0 or failures < attempts):
        failures += 1
        note({"failed": offsets[0], "n": len(offsets)})
        raise RuntimeError("the producer refused the batch")
    for o in offsets:
        note({"o": o})


@app.agent(source)
async def agent(stream):
    async for events in stream.take_events(20, within=0.05):
        if guarded:
            await handled("test", list(events), handle, retries, pause, partial(abandon_batches, app))
        else:
            await handle(list(events))


if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", "--loglevel", "info"]
    app.main()
"""

RECORDS = 200
FAIL_AT = 100


async def committed(bootstrap: str, group: str, topic: str) -> int | None:
    return (await committed_offsets(bootstrap, group, topic, [0]))[0]


async def start(
    kafka_bootstrap: str,
    unique_name: Names,
    tmp_path: Path,
    faust_runs: list[FaustRun],
    *,
    guarded: bool,
    attempts: int,
) -> tuple[FaustRun, str, str]:
    """A worker over ``RECORDS`` records whose handler fails ``attempts`` times (-1: always) on the batch that
    holds offset ``FAIL_AT``."""
    source, group = unique_name("failing-src"), unique_name("failing")
    await create_topics(kafka_bootstrap, [source], partitions=1)
    await produce(kafka_bootstrap, source, [(b"k", b"x", []) for _ in range(RECORDS)])
    env = {
        "COMPAT_BOOTSTRAP": kafka_bootstrap,
        "COMPAT_APP_ID": group,
        "COMPAT_SOURCE": source,
        "FAIL_AT": str(FAIL_AT),
        "FAIL_ATTEMPTS": str(attempts),
        "FAIL_GUARDED": "1" if guarded else "0",
    }
    faust_runs.append(FaustRun.launch(FAILING_APP, tmp_path, env))
    return faust_runs[-1], source, group


@pytest.mark.parametrize("guarded", [True, False], ids=["handled", "faust-alone"])
async def test_a_batch_that_fails_twice_is_retried_not_committed_past(
    kafka_bootstrap: str, unique_name: Names, tmp_path: Path, faust_runs: list[FaustRun], guarded: bool
) -> None:
    run, source, group = await start(
        kafka_bootstrap, unique_name, tmp_path, faust_runs, guarded=guarded, attempts=2
    )

    async def at_end() -> bool:
        return await committed(kafka_bootstrap, group, source) == RECORDS

    await wait_for(at_end, 120, interval=0.3, what="the commit reaching the end")
    lines = run.lines()
    processed = {line["o"] for line in lines if "o" in line}
    failed = [line for line in lines if "failed" in line]
    assert len(failed) >= 1 and all(FAIL_AT in range(f["failed"], f["failed"] + f["n"]) for f in failed)
    if guarded:
        assert processed == set(range(RECORDS)), f"missing {sorted(set(range(RECORDS)) - processed)[:10]}"
        assert len(failed) == 2
    else:  # Faust acknowledged the failed batch when the crashed agent's generator closed: committed, lost
        assert FAIL_AT not in processed


async def test_a_worker_stopped_while_a_batch_keeps_failing_commits_nothing_past_it(
    kafka_bootstrap: str, unique_name: Names, tmp_path: Path, faust_runs: list[FaustRun]
) -> None:
    run, source, group = await start(
        kafka_bootstrap, unique_name, tmp_path, faust_runs, guarded=True, attempts=-1
    )
    await wait_for(
        lambda: sum("failed" in line for line in run.lines()) >= 3,
        90,
        interval=0.2,
        what="three failed attempts",
    )
    [first_failed] = {line["failed"] for line in run.lines() if "failed" in line}
    assert run.stop() == 0
    processed = {line["o"] for line in run.written() if "o" in line}
    assert processed == set(
        range(first_failed)
    )  # everything before the failing batch, nothing of it or after
    assert await committed(kafka_bootstrap, group, source) == first_failed
