"""RocksDB table stores that share one memory budget per worker.

Faust opens one RocksDB instance per table *partition* and gives each its own 2 GB block cache and up to three
64 MB memtables. Memtables fill with every write and are only flushed when full, so a worker's RSS grows with
the number of table partitions it has written to, up to gigabytes (``bench/tablememory.py``: 40 stores climbed
to 541 MB and kept climbing; design note 8).

Here every store of the process draws from one :class:`TableMemory`: a single LRU block cache of
``SWITCHYARD_TABLE_MEMORY_MB``, and a write-buffer manager charging every memtable to that same cache, with half
of it as the memtable ceiling (RocksDB flushes the largest memtable when the ceiling is near). Per-store memtables
are small (4 MB) so a store that receives a trickle does not hold a large arena. 0 keeps Faust's defaults.

The budget is a soft cap on RocksDB's own memory, not on the process: Python objects, Faust's buffers and the
key index are outside it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import rocksdict
from faust.stores import STORES
from faust.stores.rocksdb import RocksDBOptions
from faust.stores.rocksdb import Store as RocksDBStore

MB = 1024 * 1024
SCHEME = "rocksdb-shared"
STORE_WRITE_BUFFER = 4 * MB
STORE_WRITE_BUFFERS = 2
_APP_ATTR = "switchyard_table_memory"


class TableMemory:
    """The process's RocksDB memory: one block cache, one memtable ceiling charged to it."""

    def __init__(self, megabytes: int) -> None:
        if megabytes < 8:
            raise ValueError("table memory below 8 MB leaves no room for one store's memtables")
        self.megabytes = megabytes
        self.cache = rocksdict.Cache(megabytes * MB)
        self.write_buffers = rocksdict.WriteBufferManager.new_write_buffer_manager_with_cache(
            megabytes * MB // 2, False, self.cache
        )

    def usage_bytes(self) -> int:
        """Bytes held in the shared cache, memtables included (they are charged to it)."""
        return int(self.cache.get_usage())


class SharedMemoryOptions(RocksDBOptions):
    """Faust's RocksDB options, with the shared cache and write-buffer manager of ``memory``."""

    def __init__(self, memory: TableMemory, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.memory = memory
        self.write_buffer_size = STORE_WRITE_BUFFER
        self.max_write_buffer_number = STORE_WRITE_BUFFERS

    def as_options(self) -> rocksdict.Options:
        options = rocksdict.Options(raw_mode=True)
        options.create_if_missing(True)
        if self.max_open_files is not None:
            options.set_max_open_files(self.max_open_files)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_target_file_size_base(self.target_file_size_base)
        options.set_write_buffer_manager(self.memory.write_buffers)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.memory.cache)
        # Index and filter blocks of every SST file would otherwise live outside the cache, one set per file of
        # every store, growing with the data; in the cache they count against the budget (L0's stay pinned).
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        return options


class SharedMemoryStore(RocksDBStore):
    """Faust's RocksDB store (rocksdict driver) drawing from the app's :class:`TableMemory`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        memory = memory_of(self.app)
        if memory is None:
            raise RuntimeError(f"{SCHEME}:// store used by an app without table memory (tablestore.install)")
        self.use_rocksdict = True
        self.rocksdb_options = SharedMemoryOptions(memory, **(self.options or {}), use_rocksdict=True)

    async def stop(self) -> None:
        """Drop the partition handles; each closes as its last reference goes. Faust's own ``stop`` also runs a
        full ``gc.collect()`` per table, which blocked the event loop ~0.7 s each: 13 tables made a SIGTERM take 11 s
        of a Kubernetes grace period. Nothing here is held in reference cycles that only a collection would free."""
        self.logger.info("Closing rocksdb on stop")
        self._dbs.clear()  # Faust's partition -> handle map (private; faust-streaming 0.15.3, unit-tested)


class ChangelogRecord(Protocol):
    """A changelog record as fetched (aiokafka's ``ConsumerRecord``) or as Faust's ``Message``: raw key and value."""

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...

    @property
    def offset(self) -> int: ...


def write_changelog(
    store: RocksDBStore, partition: int, messages: Iterable[ChangelogRecord], offset: int
) -> None:
    """Apply changelog ``messages`` of one partition to ``store`` (a value ``None`` is a tombstone: the key is
    deleted) and record ``offset`` as the partition's persisted offset, all in one RocksDB write batch.

    What Faust's ``apply_changelog_batch`` stores, minus its per-record bookkeeping, and atomic: Faust writes the
    persisted offset with a second put after the batch. Keys and values stay the raw bytes of the changelog.
    Private Faust internals (faust-streaming 0.15.3, ``tests/unit/test_runtime_internals.py``): the rocksdict
    driver (``use_rocksdict``), ``_db_for_partition`` and ``offset_key``, whose value is the offset in decimal.
    """
    if not store.use_rocksdict:
        raise TypeError("write_changelog needs Faust's rocksdict driver (python-rocksdb is not installed)")
    batch = rocksdict.WriteBatch(raw_mode=True)
    put, delete = batch.put, batch.delete
    for message in messages:
        key, value = message.key, message.value
        if key is None:  # names no entry; Faust's own write would fail on it and drop the whole batch
            continue
        if value is None:
            delete(key)
        else:
            put(key, value)
    put(store.offset_key, str(offset).encode())
    store._db_for_partition(partition).write(batch)


def memory_of(app: Any) -> TableMemory | None:
    """The budget :func:`install` gave ``app``, if any."""
    memory: TableMemory | None = getattr(app, _APP_ATTR, None)
    return memory


def install(app: Any, megabytes: int) -> TableMemory:
    """Give ``app`` a table memory budget and make ``rocksdb-shared://`` resolve to :class:`SharedMemoryStore`."""
    memory = TableMemory(megabytes)
    setattr(app, _APP_ATTR, memory)
    STORES.aliases[SCHEME] = f"{__name__}:SharedMemoryStore"
    return memory


def store_url(store: str, megabytes: int) -> str:
    """The store URL Faust gets: ``rocksdb://`` with a budget becomes ``rocksdb-shared://``; others unchanged."""
    scheme, sep, rest = store.partition("://")
    return f"{SCHEME}{sep}{rest}" if scheme == "rocksdb" and sep and megabytes > 0 else store
