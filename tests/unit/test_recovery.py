"""Batched changelog replay (``app.core.runtime.recovery``) without a broker: what it stores is what Faust's own per-event
path stores, tombstones and persisted offsets included, and it keeps the recovery service's bookkeeping right."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.types import TP, Message

from app.core.runtime import tablestore
from app.core.runtime.recovery import TABLE_MANAGER, BatchRecovery, BatchTableManager, batchable

PARTITIONS = 3


def _app(datadir: Path, name: str) -> faust.App:
    app = faust.App(
        name,
        broker="kafka://127.0.0.1:1",
        store=tablestore.store_url("rocksdb://", 16),
        datadir=str(datadir),
        TableManager=TABLE_MANAGER,
    )
    tablestore.install(app, 16)
    return app


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    return _app(tmp_path / "batched", "batched")


def _recovery(app: faust.App) -> BatchRecovery:
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # TableManagerT does not declare it
    assert isinstance(recovery, BatchRecovery)
    return recovery


def _table(app: faust.App) -> Any:
    return app.Table("totals", partitions=PARTITIONS, key_type=bytes, value_type=bytes)


def _message(topic: str, partition: int, offset: int, key: bytes, value: bytes | None) -> Message:
    return Message(topic, partition, offset, 0.0, 0, None, key, value, None, tp=TP(topic, partition))


def _changelog(topic: str) -> dict[int, list[Message]]:
    """Per partition, a changelog with overwrites, tombstones and keys written again after their tombstone."""
    logs: dict[int, list[Message]] = {p: [] for p in range(PARTITIONS)}

    def append(i: int, value: bytes | None) -> None:
        p = i % PARTITIONS
        logs[p].append(_message(topic, p, len(logs[p]), f"k{i}".encode(), value))

    for i in range(300):
        append(i, b'{"total":%d}' % i)
    for i in range(0, 300, 7):
        append(i, b'{"total":%d}' % (i + 1))
    for i in range(0, 300, 5):
        append(i, None)
    for i in range(0, 300, 25):
        append(i, b'{"total":%d}' % -i)
    return logs


def _reference(logs: dict[int, list[Message]]) -> dict[int, dict[bytes, bytes]]:
    out: dict[int, dict[bytes, bytes]] = {}
    for p, messages in logs.items():
        state: dict[bytes, bytes] = {}
        for m in messages:
            assert m.key is not None
            if m.value is None:
                state.pop(m.key, None)
            else:
                state[m.key] = m.value
        out[p] = state
    return out


def _contents(table: Any, partition: int) -> dict[bytes, bytes]:
    store = table.data
    return {bytes(k): bytes(v) for k, v in store._db_for_partition(partition).items()}


def _recovering(app: faust.App, table: Any, highwaters: dict[int, int]) -> BatchRecovery:
    """The app's recovery service as Faust leaves it once recovery of ``table``'s partitions has begun."""
    recovery = _recovery(app)
    for p, highwater in highwaters.items():
        tp = TP(table.changelog_topic.get_topic_name(), p)
        recovery.add_active(table, tp)
        recovery.active_highwaters[tp] = highwater
        if (
            recovery.active_offsets[tp] is None
        ):  # what Faust's _build_offsets makes of a log read from its start
            recovery.active_offsets[tp] = -1
    recovery._set_recovery_started()
    return recovery


@pytest.fixture
def faust_app(tmp_path: Path) -> faust.App:
    """The same app on Faust's own table manager, for the reference of what Faust's path stores."""
    app = faust.App(
        "reference",
        broker="kafka://127.0.0.1:1",
        store=tablestore.store_url("rocksdb://", 16),
        datadir=str(tmp_path / "reference"),
    )
    tablestore.install(app, 16)
    return app


def test_the_app_takes_the_batch_table_manager_and_our_tables_take_batches(app: faust.App) -> None:
    table = _table(app)
    assert isinstance(app.tables, BatchTableManager)
    assert isinstance(app.tables.recovery, BatchRecovery)
    assert batchable(table)
    assert app.tables.recovery.batched(TP(table.changelog_topic.get_topic_name(), 0))
    assert not app.tables.recovery.batched(TP("not-a-changelog", 0))


def test_a_table_with_a_changelog_callback_keeps_faust_s_per_event_path(app: faust.App) -> None:
    async def seen(event: Any) -> None:
        return None

    table = app.Table("watched", partitions=1, key_type=bytes, value_type=bytes, on_changelog_event=seen)
    assert not batchable(table)


def test_replayed_in_fetched_runs_the_store_equals_faust_s_replay_byte_for_byte(
    app: faust.App, faust_app: faust.App
) -> None:
    table, reference = _table(app), _table(faust_app)
    logs = _changelog(table.changelog_topic.get_topic_name())
    recovery = _recovering(app, table, {p: len(m) - 1 for p, m in logs.items()})
    for p, messages in logs.items():
        tp = TP(table.changelog_topic.get_topic_name(), p)
        for start in range(0, len(messages), 64):  # fetched runs of 64, as a consumer hands them over
            recovery.apply_fetched(tp, messages[start : start + 64])
        reference.apply_changelog_batch([faust_app.create_event(m.key, m.value, {}, m) for m in messages])

    expected = _reference(logs)
    for p in range(PARTITIONS):
        tp = TP(table.changelog_topic.get_topic_name(), p)
        assert _contents(table, p) == _contents(reference, p)
        ours = {k: v for k, v in _contents(table, p).items() if k != table.data.offset_key}
        assert ours == expected[p]
        assert table.persisted_offset(tp) == reference.persisted_offset(tp) == len(logs[p]) - 1
        assert recovery.active_offsets[tp] == len(logs[p]) - 1
    assert b"k0" in expected[0] and b"k5" not in expected[5 % PARTITIONS]  # re-put after delete; deleted


def test_recovery_ends_with_the_run_that_reaches_the_last_highwater_and_not_before(app: faust.App) -> None:
    table = _table(app)
    logs = _changelog(table.changelog_topic.get_topic_name())
    recovery = _recovering(app, table, {p: len(m) - 1 for p, m in logs.items()})
    topic = table.changelog_topic.get_topic_name()
    for p in (0, 1):
        recovery.apply_fetched(TP(topic, p), logs[p])
    recovery.apply_fetched(TP(topic, 2), logs[2][:-1])
    assert recovery.in_recovery and not recovery.signal_recovery_end.is_set()
    recovery.apply_fetched(TP(topic, 2), logs[2][-1:])
    assert not recovery.in_recovery and recovery.signal_recovery_end.is_set()
    # the next recovery must wait for its own end, not find this one's signal still set
    recovery._set_recovery_started()
    assert not recovery.signal_recovery_end.is_set()


def test_records_at_or_below_the_applied_offset_are_not_applied_again(app: faust.App) -> None:
    table = _table(app)
    topic = table.changelog_topic.get_topic_name()
    recovery = _recovering(app, table, {0: 10})
    tp = TP(topic, 0)
    recovery.apply_fetched(tp, [_message(topic, 0, 0, b"a", b"old"), _message(topic, 0, 1, b"a", b"new")])
    # a refetch from an earlier position (a seek) brings offset 0 again, then what follows it
    recovery.apply_fetched(tp, [_message(topic, 0, 0, b"a", b"old"), _message(topic, 0, 2, b"b", b"2")])
    assert _contents(table, 0) == {b"a": b"new", b"b": b"2", table.data.offset_key: b"2"}
    assert recovery.active_offsets[tp] == 2


def test_a_partition_neither_recovering_nor_standby_here_is_not_written(app: faust.App) -> None:
    table = _table(app)
    topic = table.changelog_topic.get_topic_name()
    recovery = _recovering(app, table, {0: 10})
    recovery.apply_fetched(TP(topic, 1), [_message(topic, 1, 0, b"x", b"1")])
    assert _contents(table, 1) == {}
    assert TP(topic, 1) not in recovery.active_offsets


def test_standby_records_are_applied_at_once_and_the_standbys_reported_ready(app: faust.App) -> None:
    table = _table(app)
    topic = table.changelog_topic.get_topic_name()
    recovery = _recovery(app)
    tp = TP(topic, 1)
    recovery.add_standby(table, tp)
    recovery.standby_highwaters[tp] = 1
    recovery.apply_fetched(tp, [_message(topic, 1, 0, b"x", b"1")])
    assert _contents(table, 1)[b"x"] == b"1"  # Faust's path held it until a thousand were buffered
    assert not app.tables.standbys_ready
    recovery.apply_fetched(tp, [_message(topic, 1, 1, b"x", None)])
    assert b"x" not in _contents(table, 1)
    assert table.persisted_offset(tp) == 1 and recovery.standby_offsets[tp] == 1
    assert app.tables.standbys_ready


async def test_a_recovery_step_that_completes_as_a_rebalance_begins_starts_recovery_over(
    app: faust.App,
) -> None:
    from faust.tables.recovery import RebalanceAgain, Recovery

    _table(app)
    recovery = _recovery(app)

    async def step_ending_as_the_rebalance_begins() -> None:
        # the rebalance's signal is set after the step completed, before the waiting task resumes: the start
        # signal's own waiter has not run yet, so Faust's wait_first sees the step alone as done
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: loop.call_soon(recovery.signal_recovery_start.set))

    with pytest.raises(RebalanceAgain):
        await recovery._wait(step_ending_as_the_rebalance_begins())
    recovery.signal_recovery_start.clear()
    # Faust's own wait lets that step through (what crashed a worker in the rebalance storm)
    await Recovery._wait(recovery, step_ending_as_the_rebalance_begins())
    assert recovery.signal_recovery_start.is_set()
    recovery.signal_recovery_start.clear()

    async def step() -> None:
        return None

    await recovery._wait(step())  # no rebalance: the step's end is just that
