"""The fetch guard's per-record decision (app/core/runtime/fetchguard.py): what is delivered, dropped, fetched again,
and which holes are booked as gaps; and which changelog runs of a fetch it hands to the recovery service whole."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import faust
import pytest
from aiokafka.structs import ConsumerRecord
from faust.types import TP

from app.core.runtime import fetchguard, tablestore
from app.core.runtime.fetchguard import Decision, Verdict, decide, hand_over
from app.core.runtime.recovery import TABLE_MANAGER


def test_a_record_fetched_before_the_latest_seek_is_fetched_again_never_delivered() -> None:
    assert decide(150, 100, stale=True, changelog=False) == Decision(Verdict.REFETCH)
    # even when it looks like the next one due: its batch may have come from the old position
    assert decide(101, 100, stale=True, changelog=False) == Decision(Verdict.REFETCH)


def test_changelog_records_keep_fausts_handling_when_stale() -> None:
    assert decide(101, 100, stale=True, changelog=True) == Decision(Verdict.DELIVER)


@pytest.mark.parametrize(
    ("offset", "read", "expected"),
    [
        (100, None, Decision(Verdict.DELIVER)),  # nothing read yet
        (100, 100, Decision(Verdict.DELIVER)),  # a seek put the position at 100: the record at it is due
        (101, 100, Decision(Verdict.DELIVER)),
        (99, 100, Decision(Verdict.DROP)),  # already delivered from this position
        (0, 0, Decision(Verdict.DELIVER)),
    ],
)
def test_in_sequence_records(offset: int, read: int | None, expected: Decision) -> None:
    assert decide(offset, read, stale=False, changelog=False) == expected


def test_a_hole_in_one_fetch_sequence_is_booked_without_the_record_that_ends_it() -> None:
    # 101..104 are transaction markers or compacted away; 105 is acknowledged when processed, not by the gap
    assert decide(105, 100, stale=False, changelog=False) == Decision(Verdict.DELIVER, gap=(101, 104))
    assert decide(102, 100, stale=False, changelog=False) == Decision(Verdict.DELIVER, gap=(101, 101))


# ---- hand_over: a record's delivery runs inline unless it has to wait -------------------------------------------
async def test_a_delivery_that_does_not_wait_runs_inline_without_the_race() -> None:
    done: list[str] = []
    raced: list[object] = []

    async def delivery() -> None:
        done.append("delivered")

    async def race(rest: Coroutine[Any, Any, None]) -> None:
        raced.append(rest)
        await rest

    tasks_before = len(asyncio.all_tasks())
    await hand_over(delivery(), race)
    assert done == ["delivered"] and raced == []
    assert len(asyncio.all_tasks()) == tasks_before


async def test_a_delivery_that_waits_finishes_under_the_race_with_its_result_and_errors() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    got: list[str] = []

    async def delivery() -> None:
        await asyncio.sleep(0)  # a bare yield
        got.append(await gate)  # a future
        raise ValueError("from the callback")

    raced: list[bool] = []

    async def race(rest: Coroutine[Any, Any, None]) -> None:
        raced.append(True)
        await rest

    asyncio.get_running_loop().call_later(0.01, gate.set_result, "value")
    with pytest.raises(ValueError, match="from the callback"):
        await hand_over(delivery(), race)
    assert raced == [True] and got == ["value"]


async def test_a_waiting_delivery_that_loses_the_race_is_abandoned() -> None:
    closed: list[str] = []
    never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def delivery() -> None:
        try:
            await never  # a full queue that never drains
        finally:
            closed.append("closed")

    flow_stopped = asyncio.Event()

    async def race(rest: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(rest)
        stop = asyncio.ensure_future(flow_stopped.wait())
        await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.get_running_loop().call_later(0.01, flow_stopped.set)
    await hand_over(delivery(), race)
    assert closed == ["closed"] and not never.done()


# ---- changelog runs taken out of a fetch for the recovery service (app/core/runtime/recovery.py) -------------------------
def _guarded_app(tmp_path: Path) -> tuple[faust.App, Any]:
    fetchguard.install()
    app = faust.App(
        "guarded",
        broker=f"{fetchguard.SCHEME}://127.0.0.1:1",
        store=tablestore.store_url("rocksdb://", 16),
        datadir=str(tmp_path),
        TableManager=TABLE_MANAGER,
    )
    tablestore.install(app, 16)
    table = app.Table("totals", partitions=2, key_type=bytes, value_type=bytes)
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # TableManagerT does not declare it
    for p in (0, 1):
        tp = TP(table.changelog_topic.get_topic_name(), p)
        recovery.add_active(table, tp)
        recovery.active_offsets[tp] = -1
        recovery.active_highwaters[tp] = 100
    recovery._set_recovery_started()
    consumer = app.consumer
    consumer.highwater = lambda tp: 100  # type: ignore[method-assign]  # the real one asks the consumer thread
    return app, table


def _consumer(app: faust.App) -> fetchguard.GuardedConsumer:
    consumer = app.consumer
    assert isinstance(consumer, fetchguard.GuardedConsumer)
    return consumer


def _record(
    topic: str, partition: int, offset: int, key: bytes, value: bytes | None
) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(topic, partition, offset, 0, 0, key, value, None, 0, 0, ())


def test_a_fetch_s_changelog_runs_go_to_the_store_and_only_stream_records_stay_for_faust(
    tmp_path: Path,
) -> None:
    app, table = _guarded_app(tmp_path)
    changelog = table.changelog_topic.get_topic_name()
    consumer = _consumer(app)
    stream_tp, tp0, tp1 = TP("guarded.raw", 0), TP(changelog, 0), TP(changelog, 1)
    stream = [_record("guarded.raw", 0, 5, b"s", b"raw")]
    consumer._read_offset[tp1] = 3  # a seek put partition 1 at 3: what precedes it is not due
    rest = consumer._replay_changelogs(
        {
            stream_tp: stream,
            tp0: [_record(changelog, 0, 0, b"a", b"1"), _record(changelog, 0, 1, b"a", None)],
            tp1: [_record(changelog, 1, 2, b"b", b"early"), _record(changelog, 1, 3, b"b", b"2")],
        },
        {stream_tp, tp0, tp1},
    )
    assert rest == {stream_tp: stream}
    assert table.data._db_for_partition(0).get(b"a") is None
    assert table.data._db_for_partition(1).get(b"b") == b"2"
    assert table.persisted_offset(tp0) == 1 and table.persisted_offset(tp1) == 3
    assert consumer._read_offset[tp0] == 1 and consumer._read_offset[tp1] == 3


def test_nothing_is_taken_while_the_flow_is_stopped_or_for_a_partition_faust_holds_inactive(
    tmp_path: Path,
) -> None:
    app, table = _guarded_app(tmp_path)
    changelog = table.changelog_topic.get_topic_name()
    consumer = _consumer(app)
    tp0, tp1 = TP(changelog, 0), TP(changelog, 1)
    fetched = {tp0: [_record(changelog, 0, 0, b"a", b"1")], tp1: [_record(changelog, 1, 0, b"b", b"1")]}
    assert consumer._replay_changelogs(fetched, {tp0}) == {tp1: fetched[tp1]}
    assert table.data._db_for_partition(1).get(b"b") is None
    consumer.stop_flow()
    assert consumer._replay_changelogs(fetched, {tp0, tp1}) == fetched


def test_a_run_the_batched_replay_fails_on_goes_through_faust_s_path_and_the_fetcher_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, table = _guarded_app(tmp_path)
    changelog = table.changelog_topic.get_topic_name()
    consumer = _consumer(app)

    def broken(tp: TP, run: Any) -> None:
        raise OSError("IO error: lock held")

    monkeypatch.setattr(app.tables.recovery, "apply_fetched", broken)  # type: ignore[attr-defined]
    tp0 = TP(changelog, 0)
    fetched = {tp0: [_record(changelog, 0, 0, b"a", b"1")]}
    assert consumer._replay_changelogs(fetched, {tp0}) == fetched
    assert consumer._read_offset[tp0] is None  # Faust's getmany decides about it as about any record
