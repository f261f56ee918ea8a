"""The recovery fix: stream partitions resume only after the seek to their committed offsets has finished.

Faust's own recovery resumes first and seeks second; a fetch in between is what skipped records (see
``app/core/recovery.py``). The end-to-end proof is the SIGKILL reliability scenario; here the order itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.core.recovery import SeekFirstTableManager, resume_after_seek
from app.main import build_faust_app
from app.settings import Settings


class FakeConsumer:
    """Records the order of resume and seek, as Faust's consumer would perform them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, frozenset[str]]] = []
        self.resumed: set[str] = set()
        #: what Faust's seek leaves behind: raw-0 has a committed offset, raw-1 has none yet
        self._committed_offset: dict[str, int | None] = {"raw-0": 5}

    def resume_partitions(self, tps: set[str]) -> None:
        self.calls.append(("resume", frozenset(tps)))
        self.resumed |= set(tps)

    async def perform_seek(self) -> None:
        await asyncio.sleep(0)  # the real seek waits for the coordinator: a fetch could run meanwhile
        self.calls.append(("seek", frozenset(self.resumed)))

    async def earliest_offsets(self, *tps: str) -> dict[str, int]:
        return dict.fromkeys(tps, 3)  # retention removed offsets 0-2

    async def seek(self, tp: str, offset: int) -> None:
        self.calls.append((f"seek {tp} to {offset}", frozenset(self.resumed)))


async def faust_order(consumer: FakeConsumer) -> None:
    """What ``Recovery.on_recovery_completed`` does: resume the stream partitions, then seek them."""
    consumer.resume_partitions({"raw-0", "raw-1"})
    await consumer.perform_seek()


async def test_partitions_resume_only_after_the_seek() -> None:
    consumer = FakeConsumer()
    with resume_after_seek(consumer):
        await faust_order(consumer)
    # At the seek nothing was resumed yet; the partition without a committed offset was sought to its first
    # offset; the resume came last, with every partition asked for.
    assert consumer.calls == [
        ("seek", frozenset()),
        ("seek raw-1 to 3", frozenset()),
        ("resume", {"raw-0", "raw-1"}),
    ]
    assert consumer.resumed == {"raw-0", "raw-1"}


async def test_the_consumer_gets_its_own_methods_back() -> None:
    consumer = FakeConsumer()
    with resume_after_seek(consumer):
        pass
    consumer.resume_partitions({"raw-2"})
    assert consumer.calls == [("resume", {"raw-2"})]
    assert "resume_partitions" not in vars(consumer) and "perform_seek" not in vars(consumer)


async def test_a_recovery_interrupted_before_the_seek_leaves_the_partitions_paused() -> None:
    consumer = FakeConsumer()
    with pytest.raises(RuntimeError), resume_after_seek(consumer) as held:
        consumer.resume_partitions({"raw-0"})
        raise RuntimeError("rebalance again")
    assert held == {"raw-0"}
    assert consumer.resumed == set()


def test_the_worker_app_recovers_with_the_fix(tmp_path: Path) -> None:
    app = build_faust_app(Settings(broker="127.0.0.1:1", data_dir=tmp_path))
    assert isinstance(app.tables, SeekFirstTableManager)
    assert type(app.tables.recovery).__name__ == "SeekFirstRecovery"
