"""A batch whose handling fails is neither lost nor committed (``app.core.runtime.worker.handled``).

A record's own faults are dead-lettered by the engine; what can still fail under a batch is the machinery (a
producer send, a store write). Faust's ``take_events`` acknowledges a batch when its generator closes, however the
agent's loop left it, so on Faust alone a batch whose handling raised is committed unprocessed: its records are
gone. These tests run a plain Faust worker on the guarded consumer with the runtime's own :func:`handled`, and
the same worker calling its handler bare, to show what the helper prevents.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.faust_run import FaustRun
from tests.kafka_helpers import committed_offsets, create_topics, produce, wait_for
from tests.worker import free_port

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
    web_port=int(os.environ.get("COMPAT_WEB_PORT", "6066")),  # Faust's worker binds it even with web off
)
source = app.topic(os.environ["COMPAT_SOURCE"], key_serializer="raw", value_serializer="raw")
retries = Counter("retries", "batch retries", ["stage"], registry=CollectorRegistry())
failures = 0


async def pause(seconds):  # the runtime's own pause, its waits scaled down so a test is quick
    await retry_pause(app, seconds / float(os.environ.get("PAUSE_SCALE", "10")))


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
    **extra: str,
) -> tuple[FaustRun, str, str, dict[str, str]]:
    """A worker over ``RECORDS`` records whose handler fails ``attempts`` times (-1: always) on the batch that
    holds offset ``FAIL_AT``; also returns the environment, for a second worker of the same group."""
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
    faust_runs.append(FaustRun.launch(FAILING_APP, tmp_path, {**env, **extra}))
    return faust_runs[-1], source, group, env


@pytest.mark.parametrize("guarded", [True, False], ids=["handled", "faust-alone"])
async def test_a_batch_that_fails_twice_is_retried_not_committed_past(
    kafka_bootstrap: str, unique_name: Names, tmp_path: Path, faust_runs: list[FaustRun], guarded: bool
) -> None:
    run, source, group, _ = await start(
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
    run, source, group, _ = await start(
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


async def test_a_batch_still_failing_lets_a_rebalance_through_within_its_wait(
    kafka_bootstrap: str, unique_name: Names, tmp_path: Path, faust_runs: list[FaustRun]
) -> None:
    """Faust's revocation waits for the batches in flight. A second worker joins while the first sits in a 16 s
    wait between attempts (the runtime's real waits): the first gives the batch up as soon as the rebalance stops
    its flow, not when the wait ends, and nothing past the batch is committed unless the partition's owner
    processed it."""
    a, source, group, env = await start(
        kafka_bootstrap, unique_name, tmp_path, faust_runs, guarded=True, attempts=-1, PAUSE_SCALE="1"
    )
    await wait_for(
        lambda: sum("failed" in line for line in a.lines()) >= 5,  # after waits of 0.5, 1, 2 and 4 s; next 16
        60,
        interval=0.2,
        what="five failed attempts",
    )
    [first_failed] = {line["failed"] for line in a.lines() if "failed" in line}
    second = {**env, "FAIL_ATTEMPTS": "0", "COMPAT_WEB_PORT": str(free_port())}
    faust_runs.append(FaustRun.launch(FAILING_APP, tmp_path, second, name="second"))
    b = faust_runs[-1]
    given_up = await wait_for(
        lambda: log_time(a.log, "batch given up"), 40, interval=0.2, what="the first giving the batch up"
    )
    assert given_up is not None
    revoked = log_time(a.log, "Revoking previously assigned partitions", before=given_up)
    assert revoked is not None and (given_up - revoked).total_seconds() < 3, (revoked, given_up)
    assert sum("failed" in line for line in a.lines()) == 5  # given up within the wait, not after another try
    await wait_for(
        lambda: log_time(b.log, "Setting newly assigned partitions"), 30, what="the second's assignment"
    )

    async def settled() -> bool:
        offset = await committed(kafka_bootstrap, group, source)
        done = {line["o"] for line in b.lines() if "o" in line}
        # the second owns the partition and went on from the committed offset, or the first kept it and the
        # batch is still withheld
        return (offset == RECORDS and done >= set(range(first_failed, RECORDS))) or (
            offset is not None and offset <= first_failed and first_failed not in done
        )

    await wait_for(settled, 60, interval=0.3, what="the commit at the end, or still before the failed batch")


def log_time(log: Path, text: str, before: datetime | None = None) -> datetime | None:
    """When ``log`` last said ``text`` (before ``before``, if given): Faust's lines start ``[%Y-%m-%d %H:%M:%S,%f]``."""
    found = None
    for line in log.read_text(errors="replace").splitlines():
        if text in line and line.startswith("["):
            at = datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f")
            if before is None or at <= before:
                found = at
    return found
