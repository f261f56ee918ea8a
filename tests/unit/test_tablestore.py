"""The shared RocksDB budget: stores built from it work, and their memory lands in the one cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.runtime import build_faust_app
from app.core.runtime.tablestore import (
    MB,
    SCHEME,
    SharedMemoryOptions,
    SharedMemoryStore,
    TableMemory,
    memory_of,
    store_url,
)
from app.settings import Settings


def test_rocksdb_with_a_budget_becomes_the_shared_store_and_other_stores_stay() -> None:
    assert store_url("rocksdb://", 128) == f"{SCHEME}://"
    assert store_url("rocksdb://", 0) == "rocksdb://"
    assert store_url("memory://", 128) == "memory://"


def test_a_budget_too_small_for_one_store_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="table memory"):
        TableMemory(4)


def test_many_stores_write_and_read_back_while_their_memtables_are_charged_to_one_cache(
    tmp_path: Path,
) -> None:
    memory = TableMemory(16)
    options = SharedMemoryOptions(memory, use_rocksdict=True)
    dbs = [options.open(tmp_path / f"p{i}") for i in range(12)]
    value = b"v" * 200
    for n, db in enumerate(dbs):
        for k in range(15_000):
            db[f"{n}-{k}".encode()] = value
    # 12 stores x 15,000 x ~210 bytes = 36 MB of writes. With Faust's defaults every store would still hold its
    # writes in its own memtable (up to 3 x 64 MB each). Here they are charged to the one 16 MB cache and
    # flushed as the ceiling nears; flushes run in the background, so the cap is soft: allow half again.
    assert 0 < memory.usage_bytes() <= 24 * MB
    assert all(db[f"{n}-14999".encode()] == value for n, db in enumerate(dbs))
    for db in dbs:
        db.close()


@pytest.mark.parametrize(("megabytes", "shared"), [(128, True), (0, False)])
def test_the_worker_app_gives_its_tables_the_shared_store_unless_the_budget_is_zero(
    tmp_path: Path, megabytes: int, shared: bool
) -> None:
    app = build_faust_app(Settings(data_dir=tmp_path, table_memory_mb=megabytes, broker="127.0.0.1:1"))
    table = app.Table(f"t{megabytes}", partitions=1, key_type=bytes, value_type=bytes)
    assert isinstance(table.data, SharedMemoryStore) is shared
    assert (memory_of(app) is not None) is shared
