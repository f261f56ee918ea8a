"""A worker rebuilds a table from its changelog, and after a SIGKILL from its persisted offset, to exactly the
reference: overwrites, tombstones and keys written again after their tombstone included.

The changelog of the test domain's ``totals`` table is written directly, in Faust's format (raw key, JSON state,
``None`` for a deletion), with the partitions chosen here, so the reference is known record by record. The worker's
table is checked twice: through its HTTP query while it runs, and, once it has stopped, by reading its RocksDB
partitions directly (every key, and the persisted offset Faust's recovery seeks from).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest
import rocksdict

from app.core.kafka import producer
from app.settings import Settings
from tests.kafka_helpers import create_topics
from tests.worker import Deployment, Worker

pytestmark = pytest.mark.integration

CATALOG = str(Path(__file__).parent / "testdomain" / "catalog.yaml")
PARTITIONS = 3
OFFSET_KEY = b"__faust\0offset__"

Record = tuple[int, bytes, bytes | None]  # partition, key, value (None: tombstone)


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, request: Any) -> Any:
    name = "r" + str(abs(hash(request.node.nodeid)) % 10**8)
    d = Deployment(
        kafka_bootstrap,
        name,
        tmp_path,
        SWITCHYARD_CATALOG_FILE=CATALOG,
        SWITCHYARD_TOPIC_PARTITIONS=str(PARTITIONS),
        SWITCHYARD_STANDBY_REPLICAS="0",
    )
    d.cli("topics", "create")
    yield d
    d.stop_all()


def _state(total: int) -> bytes:
    return json.dumps({"total": total, "folded": []}).encode()


def _key(i: int) -> bytes:
    return f"member-{i:05d}".encode()


def _write(settings: Settings, topic: str, records: list[Record]) -> None:
    async def go() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            futures = [await prod.send(topic, value, key=key, partition=p) for p, key, value in records]
            await asyncio.gather(*futures)
        finally:
            await prod.stop()

    asyncio.run(go())


class Reference:
    """What each partition of the table must hold, and the offset of its last changelog record."""

    def __init__(self) -> None:
        self.partitions: dict[int, dict[bytes, bytes]] = {p: {} for p in range(PARTITIONS)}
        self.last_offset: dict[int, int] = {p: -1 for p in range(PARTITIONS)}

    def apply(self, records: list[Record]) -> None:
        for p, key, value in records:
            self.last_offset[p] += 1
            if value is None:
                self.partitions[p].pop(key, None)
            else:
                self.partitions[p][key] = value

    def value(self, key: bytes) -> bytes | None:
        for part in self.partitions.values():
            if key in part:
                return part[key]
        return None


def _history(first: int, count: int) -> list[Record]:
    """Keys ``first``..``first + count``: written, every 7th overwritten, every 5th deleted, every 25th written again
    after its deletion."""
    out: list[Record] = []
    for i in range(first, first + count):
        out.append((i % PARTITIONS, _key(i), _state(i)))
    for i in range(first, first + count, 7):
        out.append((i % PARTITIONS, _key(i), _state(i + 1_000_000)))
    for i in range(first, first + count, 5):
        out.append((i % PARTITIONS, _key(i), None))
    for i in range(first, first + count, 25):
        out.append((i % PARTITIONS, _key(i), _state(-i)))
    return out


def _answers_like(worker: Worker, ref: Reference, keys: set[bytes]) -> None:
    """The worker's HTTP answers for a sample of ``keys`` (a query costs ~0.1 s on a busy box; the stores are
    compared whole once the worker has stopped): every 23rd key, and every key a tombstone or a re-put touched."""
    ordered = sorted(keys)
    sample = set(ordered[::23]) | {k for k in ordered if int(k.decode().rsplit("-", 1)[1]) % 25 in (0, 5)}
    wrong = []
    for key in sorted(sample):
        expected = ref.value(key)
        r = worker.get(f"/api/testdomain/{key.decode()}")
        if expected is None:
            if r.status_code != 404:
                wrong.append((key, r.status_code, r.text))
        elif r.status_code != 200 or r.json() != {"total": json.loads(expected)["total"]}:
            wrong.append((key, r.status_code, r.text))
    assert not wrong, f"{len(wrong)} of {len(sample)} keys answered wrong, e.g. {wrong[:5]}"


def _stored(deployment: Deployment) -> dict[int, dict[bytes, bytes]]:
    out = {}
    for p in range(PARTITIONS):
        [path] = list((deployment.tmp / "data").rglob(f"testdomain-totals-{p}.db"))
        db = rocksdict.Rdict(
            str(path), options=rocksdict.Options(raw_mode=True), access_type=rocksdict.AccessType.read_only()
        )
        try:
            out[p] = {cast(bytes, k): cast(bytes, v) for k, v in db.items()}  # raw mode: bytes
        finally:
            db.close()
    return out


def test_a_table_rebuilt_from_its_changelog_and_again_after_a_sigkill_equals_the_reference(
    deployment: Deployment, kafka_bootstrap: str
) -> None:
    changelog = f"{deployment.settings.app_id}-testdomain-totals-changelog"
    asyncio.run(create_topics(kafka_bootstrap, [changelog], partitions=PARTITIONS))
    ref = Reference()
    first = _history(0, 1500)
    _write(deployment.settings, changelog, first)
    ref.apply(first)
    keys = {key for _, key, _ in first}
    assert any(ref.value(k) is None for k in keys) and any(b"-" in (ref.value(k) or b"") for k in keys)

    # a fresh data dir: everything comes from the changelog
    w = deployment.worker().start()
    _answers_like(w, ref, keys)

    # SIGKILL, then the changelog grows while no worker runs: more keys, and overwrites and tombstones of the old
    w.kill()
    tail = _history(1000, 1500)
    _write(deployment.settings, changelog, tail)
    ref.apply(tail)
    keys |= {key for _, key, _ in tail}

    # the same data dir: RocksDB holds the first part, the recovery reads from its persisted offsets
    again = deployment.worker(SWITCHYARD_WORKER_ID="w0").start()
    _answers_like(again, ref, keys)
    again.stop()

    stored = _stored(deployment)
    for p in range(PARTITIONS):
        offset = stored[p].pop(OFFSET_KEY)
        assert stored[p] == ref.partitions[p], f"partition {p} differs from the reference"
        assert int(offset) == ref.last_offset[p]
