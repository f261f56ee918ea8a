"""Faust's table recovery, with stream partitions sought to their committed offsets *before* they resume.

faust-streaming (0.12 to 0.15) ends a recovery by resuming the stream partitions and only then seeking them to
their committed offsets (``Recovery.on_recovery_completed``; ``Recovery._resume_streams`` likewise). The fetcher
already runs at that point, so the agents process records fetched in between; the seek then rewinds the
consumer, the records fetched again are dropped as already read, and once the read offset has been reset
behind the consumer's position the next record looks like a jump, which the consumer books as a *gap*: offsets
it counts as acknowledged and commits. Those records never reach an agent, and a worker killed after that
commit leaves them unprocessed for good. The SIGKILL reliability scenario caught it: feed offsets that no
handler of any worker ever saw, and tables that disagreed with the reference.

:class:`SeekFirstRecovery` keeps Faust's steps and their order but holds the resume of stream partitions back
until the seek has finished, and gives the partitions that have no committed offset yet an explicit seek to
their first offset (Faust leaves them wherever the consumer happened to be). While the partitions are paused
nothing is fetched from them, so the first record an agent sees after a rebalance is the one at the committed
offset (or the partition's first), and read offsets never move backwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from faust.tables import TableManager
from faust.tables.recovery import Recovery


@contextmanager
def resume_after_seek(consumer: Any) -> Iterator[set[Any]]:
    """Within the block, ``consumer.resume_partitions`` only records its partitions, and
    ``consumer.perform_seek`` resumes them once the seek is done. Yields the partitions still held back.

    Partitions held when the block ends without a seek (a new rebalance interrupted the recovery) stay paused:
    the recovery that the new rebalance starts resumes what is assigned then.
    """
    held: set[Any] = set()
    resume = consumer.resume_partitions
    seek = consumer.perform_seek

    def hold(tps: Iterable[Any]) -> None:
        held.update(tps)

    async def seek_then_resume() -> None:
        await seek()
        await seek_uncommitted_to_start(consumer, held)
        resume(set(held))
        held.clear()

    consumer.resume_partitions = hold
    consumer.perform_seek = seek_then_resume
    try:
        yield held
    finally:
        # The instance attributes shadowed the class's methods; removing them brings those back.
        del consumer.resume_partitions
        del consumer.perform_seek


async def seek_uncommitted_to_start(consumer: Any, tps: Iterable[Any]) -> None:
    """Seek the partitions of ``tps`` that have no committed offset to their first offset.

    Faust's seek moves only partitions with a committed offset; one without keeps whatever position the
    consumer reached while the partition was paused or its fetched records were discarded in a rebalance, and
    the records before that position were then never processed, and committed past later (a fresh worker
    started a feed partition at its end). ``auto_offset_reset=earliest`` is the intent: say it explicitly.
    """
    committed = consumer._committed_offset  # Faust's own record, filled by the seek that just ran
    fresh = [tp for tp in tps if committed.get(tp) is None]
    if not fresh:
        return
    for tp, offset in (await consumer.earliest_offsets(*fresh)).items():
        await consumer.seek(tp, offset)


class SeekFirstRecovery(Recovery):
    """Faust's recovery with the stream partitions sought before they resume (see the module docstring)."""

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        with resume_after_seek(self.app.consumer):
            await super().on_recovery_completed(generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        with resume_after_seek(self.app.consumer):
            await super()._resume_streams(generation_id)


class SeekFirstTableManager(TableManager):
    """Faust's table manager, recovering with :class:`SeekFirstRecovery` (``faust.App(TableManager=...)``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekFirstRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery
