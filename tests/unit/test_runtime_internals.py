"""The private Faust internals the runtime relies on, checked against the installed faust-streaming.

Each is used in one place of ``app/core/runtime/`` with a comment naming the version it was checked against
(0.15.3). If an upgrade moves any of them, a test here fails first, instead of a worker that silently reports
itself never ready, exports zero lag, loses table writes or delivers records the fetch guard should hold back.

- ``TableIO`` writes a batch straight into the RocksDB store of a table partition (``_db_for_partition``) and keeps
  Faust's key index (``_key_index``) right, so that Faust's own reads and HTTP queries find the key; its persisted
  offset goes through the public ``set_persisted_offset``.
- ``internals.started_consumer`` (``App._consumer``) and ``internals.committed_offset``
  (``Consumer._committed_offset``): readiness and lag.
- ``SharedMemoryStore.stop`` clears Faust's ``_dbs``.
- ``GuardedConsumer`` overrides or reads the names in ``fetchguard.FAUST_INTERNALS``.
- Batched changelog replay (``recovery.BatchRecovery``) updates the recovery service's offsets and signals, and
  ``tablestore.write_changelog`` writes the store with the persisted offset in the same batch.
"""

from __future__ import annotations

from pathlib import Path

import faust
import pytest
from faust.stores.rocksdb import Store as RocksDBStore
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from app.core.engine import Write
from app.core.runtime import TableIO, fetchguard, internals, tablestore


@pytest.fixture
def app(tmp_path: Path) -> faust.App:
    fetchguard.install()
    built = faust.App(
        "internals",
        broker=f"{fetchguard.SCHEME}://127.0.0.1:1",
        store=tablestore.store_url("rocksdb://", 16),
        datadir=str(tmp_path),
    )
    tablestore.install(built, 16)
    return built


@pytest.fixture
def io(app: faust.App) -> TableIO:
    table = app.Table("t", partitions=4, key_type=bytes, value_type=bytes)
    return TableIO(table)


def test_writes_land_in_their_partition_and_faust_reads_them_back(io: TableIO) -> None:
    io.store({b"a": Write(2, b"1", 10), b"b": Write(3, b"2", 11)})
    assert io.read(2, b"a") == b"1" and io.read(3, b"a") is None
    store = io.table.data
    assert store._key_index[b"a"] == 2
    # Faust's own lookup (what ``table.get`` and the HTTP queries use) finds the key through its index
    assert store._get_bucket_for_key(b"b")[1] == b"2"
    assert io.get("a") == 1
    io.store({b"a": Write(2, None, 12)})
    assert io.read(2, b"a") is None and b"a" not in store._key_index


def test_the_persisted_offset_is_faust_s(io: TableIO) -> None:
    tp = TP(io.changelog, 1)
    io.table.data.set_persisted_offset(tp, 41)
    assert io.table.persisted_offset(tp) == 41
    assert io.changelog.endswith("t-changelog")


def test_the_shared_store_stops_by_dropping_faust_s_partition_handles(io: TableIO) -> None:
    io.store({b"a": Write(1, b"1", 1)})
    store = io.table.data
    assert isinstance(store, RocksDBStore) and store._dbs
    store._dbs.clear()
    assert not store._dbs


def test_the_consumer_is_seen_only_once_created_and_its_committed_offsets_are_read(app: faust.App) -> None:
    assert internals.started_consumer(app) is None  # a readiness probe must not create it
    consumer = app.consumer
    assert internals.started_consumer(app) is consumer
    tp = TP("t", 0)
    assert internals.committed_offset(consumer, tp) is None
    consumer._committed_offset[tp] = 7
    assert internals.committed_offset(consumer, tp) == 7


def test_the_fetch_loop_the_guard_overrides_is_still_faust_s(app: faust.App) -> None:
    consumer = app.consumer
    assert isinstance(consumer, fetchguard.GuardedConsumer)
    base = faust_aiokafka.Consumer
    missing = [n for n in fetchguard.FAUST_INTERNALS if not (hasattr(base, n) or hasattr(consumer, n))]
    assert not missing, f"faust-streaming moved {missing}: re-check app/core/runtime/fetchguard.py"
    # The overridden methods must be the base class's own (an override of a method Faust no longer calls
    # would silently switch the guard off).
    overridden = [n for n in fetchguard.FAUST_INTERNALS if n in vars(fetchguard.GuardedConsumer)]
    assert overridden and all(callable(getattr(base, n, None)) for n in overridden)


# ---- batched changelog replay (runtime/recovery.py, tablestore.write_changelog) ------------------------
RECOVERY_ATTRIBUTES = (
    "active_tps",
    "standby_tps",
    "tp_to_table",
    "active_offsets",
    "standby_offsets",
    "active_highwaters",
    "standby_highwaters",
    "_active_events_received_at",
    "_standby_events_received_at",
    "buffers",
)
RECOVERY_METHODS = (
    "_set_recovery_started",
    "_set_recovery_ended",
    "flush_buffers",
    "need_recovery",
    "standby_remaining_total",
    "_slurp_changelogs",
)


def test_the_recovery_service_keeps_the_state_batched_replay_updates(io: TableIO) -> None:
    from faust.tables import TableManager
    from faust.tables.recovery import Recovery

    recovery = io.table.app.tables.recovery
    for name in RECOVERY_ATTRIBUTES:
        assert hasattr(recovery, name), f"Recovery.{name} moved"
    for name in RECOVERY_METHODS:
        assert callable(getattr(Recovery, name, None)), f"Recovery.{name} moved"
    # class-level defaults the batched path reads before Faust's loop ever set them
    assert Recovery._last_flush_at is None and Recovery._standbys_span is None
    assert recovery.signal_recovery_end is recovery.signal_recovery_end  # one event, created on first use
    assert isinstance(TableManager.__dict__["recovery"], property)
    manager = io.table.app.tables
    assert manager._recovery is recovery and manager._changelogs[io.changelog] is io.table
    assert hasattr(manager, "standbys_ready")
    assert io.table._on_changelog_event is None


def test_the_faust_app_takes_a_table_manager_class_by_name() -> None:
    from app.core.runtime.recovery import TABLE_MANAGER, BatchTableManager

    app = faust.App("tm", broker="kafka://127.0.0.1:1", TableManager=TABLE_MANAGER)
    assert isinstance(app.tables, BatchTableManager)


def test_write_changelog_stores_what_faust_reads_back(io: TableIO) -> None:
    store = io.table.data
    assert store.use_rocksdict
    store._db_for_partition(1).put(b"gone", b"x")
    tablestore.write_changelog(
        store,
        1,
        [
            faust.types.Message(io.changelog, 1, 7, 0.0, 0, None, b"k", b"v", None),
            faust.types.Message(io.changelog, 1, 8, 0.0, 0, None, b"gone", None, None),
        ],
        8,
    )
    # Faust's own persisted-offset read (what its recovery seeks from) and its own key lookup
    assert io.table.persisted_offset(TP(io.changelog, 1)) == 8
    assert store.offset_key == b"__faust\0offset__"
    assert store._get_bucket_for_key(b"k")[1] == b"v"
    assert store._get_bucket_for_key(b"gone") is None


def test_faust_s_getmany_takes_its_records_from_wait_next_records_and_tracks_read_offsets() -> None:
    """The guarded consumer takes changelog runs out of what ``_wait_next_records`` returns, before ``getmany``
    makes messages of them, and keeps Faust's ``_read_offset`` (a default of None) and ``_buffered_partitions``."""
    import inspect

    from faust.transport.consumer import Consumer

    getmany = inspect.getsource(Consumer.getmany)
    assert "records, active_partitions = await self._wait_next_records(timeout)" in getmany
    assert "tp in self._buffered_partitions" in getmany
    fetchguard.install()
    app = faust.App("consumer-internals", broker=f"{fetchguard.SCHEME}://127.0.0.1:1")
    consumer = app.consumer
    assert isinstance(consumer, fetchguard.GuardedConsumer)
    assert consumer._read_offset[TP("t", 0)] is None and consumer._buffered_partitions == set()
    assert consumer.flow_active
