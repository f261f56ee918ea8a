"""The private Faust internals the runtime's table I/O relies on, checked against the installed faust-streaming.

``TableIO`` writes a batch straight into the RocksDB store of a table partition (``_db_for_partition``) and keeps
Faust's key index (``_key_index``) right, so that Faust's own reads and HTTP queries find the key; its persisted
offset goes through the public ``set_persisted_offset``. If an upgrade moves any of these, this fails first.
"""

from __future__ import annotations

from pathlib import Path

import faust
import pytest
from faust.types import TP

from app.core import tablestore
from app.core.engine import Write
from app.core.runtime import TableIO


@pytest.fixture
def io(tmp_path: Path) -> TableIO:
    app = faust.App(
        "internals",
        broker="kafka://127.0.0.1:1",
        store=tablestore.store_url("rocksdb://", 16),
        datadir=str(tmp_path),
    )
    tablestore.install(app, 16)
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
