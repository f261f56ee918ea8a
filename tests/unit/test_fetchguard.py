"""The fetch guard's per-record decision (app/core/runtime/fetchguard.py): what is delivered, dropped, fetched again, and
which holes are booked as gaps."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import pytest

from app.core.runtime.fetchguard import Decision, Verdict, decide, hand_over


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
