"""A Faust consumer that never hands a stream a record fetched before the latest seek (design note 7).

faust-streaming 0.15 loses records around rebalances, and the SIGKILL scenario of the reliability suite shows it:
outputs missing on every at-least-once domain, fold tables short. Three things in its fetch loop combine:

1. A batch can straddle a seek. The fetch loop reads the consumer generation *after* the records came back, and a
   rebalance that completes during the fetch (a fast recovery does) passes that check, so records fetched from
   the old position are delivered after the partitions were sought to their committed offsets. Each such record
   moves the partition's read offset ahead of the new position: the loop books the offsets in between as a *gap*
   (acknowledged, so committed) and then drops their real refetches as "already read". Nothing processed them.
2. A record whose delivery was abandoned because the flow stopped is still marked read.
3. Seeking to committed offsets skips partitions that have none (aiokafka seeks only offsets > 0), so records
   fetched during recovery and abandoned stay behind the fetch position of a new consumer group's partitions.

This consumer keeps an *epoch*, advanced by everything that moves or invalidates fetch positions (stopping the
flow, rebalances, seeks). A fetched batch carries the epoch it was requested in; a stream record from an older
epoch is never delivered, and the partition is sought back to its committed offset so the record comes again
(at-least-once, and every domain deduplicates). A record is marked read only when delivered within its own epoch,
so a gap is only ever booked between two records of one uninterrupted fetch sequence: a real hole (transaction
markers, compaction). Seeking to committed offsets also positions stream partitions without one at their start.

Changelog partitions keep Faust's own handling: table recovery positions them itself, and they have no committed
offsets to seek back to. Where the recovery service takes them a run at a time (:mod:`.recovery`), the
changelog records of a fetch go to it straight from the fetched batch, a run per partition, instead of through
Faust's per-record path (a message, a conductor callback and a queued event each).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar, cast

from faust.transport import drivers
from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message
from mode import Service

#: Broker URL scheme that selects this module's transport (``kafka`` is Faust's plain aiokafka one).
SCHEME = "kafka-guarded"


class Verdict(Enum):
    DELIVER = "deliver"
    #: Already delivered from this position: Faust's duplicate drop, kept.
    DROP = "drop"
    #: Fetched before the latest seek: never delivered; the partition is sought back instead.
    REFETCH = "refetch"


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    #: Offsets (inclusive bounds) the log holds no record for, when delivering across a real hole.
    gap: tuple[int, int] | None = None


_DELIVER, _DROP, _REFETCH = Decision(Verdict.DELIVER), Decision(Verdict.DROP), Decision(Verdict.REFETCH)


def decide(offset: int, read_offset: int | None, *, stale: bool, changelog: bool) -> Decision:
    """What to do with one fetched record. ``read_offset`` is Faust's: the last record delivered, or the position a
    seek set (so the record *at* it is still due); ``stale`` says the batch was requested before the latest seek."""
    if stale and not changelog:
        return _REFETCH
    if read_offset is not None and offset < read_offset:
        return _DROP
    if read_offset and offset - read_offset > 1:
        return Decision(Verdict.DELIVER, gap=(read_offset + 1, offset - 1))
    return _DELIVER


async def hand_over(
    delivery: Awaitable[Any], race: Callable[[Coroutine[Any, Any, None]], Awaitable[None]]
) -> None:
    """Run ``delivery`` (Faust's per-record callback) inline while it does not suspend; only if it does, finish it
    under ``race`` (against the flow stopping, so a record whose delivery had to wait is abandoned by a rebalance).

    Faust races every record's delivery against the flow stop with ``wait_first``: four tasks and an
    ``asyncio.wait`` per record, about 100 us of a worker's CPU. The callback suspends only when the flow is
    paused, the producer buffer is full or the stream's queue is full; otherwise it completes within its first
    step, before anything could stop the flow, and no task is needed.
    """
    if not asyncio.iscoroutine(delivery):  # not Faust's callback: no first step to take
        await race(_awaited(delivery))
        return
    try:
        yielded = delivery.send(None)
    except StopIteration:
        return
    await race(_resume(delivery, yielded))


async def _awaited(delivery: Awaitable[Any]) -> None:
    await delivery


async def _resume(delivery: Coroutine[Any, Any, Any], yielded: Any) -> None:
    """Drive a coroutine that suspended on ``yielded`` to its end, as a task would (the rest of :func:`hand_over`).
    Cancelled (the race was lost), it is closed where it waits."""
    try:
        while True:
            if yielded is None:  # a bare yield (asyncio.sleep(0)): let the loop turn once
                await asyncio.sleep(0)
            else:  # an asyncio future: wait for it, then let the coroutine read its outcome
                yielded._asyncio_future_blocking = False
                await asyncio.wait([yielded])
            try:
                yielded = delivery.send(None)
            except StopIteration:
                return
    except BaseException:
        delivery.close()
        raise


#: Private parts of Faust's consumer this subclass overrides or reads, checked against faust-streaming 0.15.3
#: (``tests/unit/test_runtime_internals.py`` fails if one moves): methods of the fetch loop, then attributes.
FAUST_INTERNALS: tuple[str, ...] = (
    "_wait_next_records",
    "_drain_messages",
    "_add_gap",
    "_is_changelog_tp",
    "_read_offset",
    "_buffered_partitions",
    "_committed_offset",
    "_n_acked",
    "_commit_every",
    "_stopped",
)


class GuardedConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with the fetch epoch described in the module docstring."""

    _epoch: int = 0
    _fetch_epoch: int = 0
    #: Stream partitions sent back to their committed offset so far (``switchyard_consumer_refetches_total``).
    refetches: int = 0

    def _advance(self) -> None:
        self._epoch += 1

    def _is_stream_tp(self, tp: TP) -> bool:
        return not self._is_changelog_tp(tp)

    # ---- everything that moves fetch positions advances the epoch ---------------------------------------------
    def stop_flow(self) -> None:
        self._advance()
        super().stop_flow()

    async def seek(self, partition: TP, offset: int) -> None:
        self._advance()
        try:
            await super().seek(partition, offset)
        finally:
            self._advance()

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        moves_streams = any(self._is_stream_tp(tp) for tp in partitions)
        if moves_streams:
            self._advance()
        try:
            await super().seek_wait(partitions)
        finally:
            if moves_streams:
                self._advance()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        self._advance()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        self._advance()
        await super().on_partitions_assigned(assigned, generation_id)

    async def perform_seek(self) -> None:
        """Seek every stream partition to its committed offset, or to its start when it has none."""
        self._advance()
        try:
            if not self.assignment():
                return
            committed = {ensure_TP(tp): offset for tp, offset in (await self.seek_to_committed()).items()}
            unpositioned = [
                tp for tp in self.assignment() if self._is_stream_tp(tp) and not (committed.get(tp) or 0) > 0
            ]
            if unpositioned:
                await self.seek_wait(await self.earliest_offsets(*unpositioned))
            for tp, offset in committed.items():
                if offset is not None and offset > 0:
                    self._read_offset[tp] = offset
                    self._committed_offset[tp] = offset
            for tp in unpositioned:
                self._read_offset.pop(tp, None)
                self._committed_offset[tp] = None
        finally:
            self._advance()

    # ---- fetching ---------------------------------------------------------------------------------------------
    async def _wait_next_records(self, timeout: float) -> Any:
        # Wait for the flow first, so the epoch is taken when the fetch is really requested.
        if not self.flow_active:
            await self.wait(self.can_resume_flow)  # type: ignore[arg-type]
        self._fetch_epoch = self._epoch
        records, active = await super()._wait_next_records(timeout)
        if records:
            records = self._replay_changelogs(records, active)
        return records, active

    def _replay_changelogs(
        self, records: Mapping[TP, list[Any]], active: set[TP] | None
    ) -> Mapping[TP, list[Any]]:
        """Hand the fetched changelog runs the recovery service takes whole to it; return the other records, which
        Faust's ``getmany`` then delivers one by one.

        Faust's per-record path costs ~200 us a changelog record (a message, a conductor callback, a decoded event
        on a bounded queue, the recovery loop's timed get); a run costs one RocksDB write batch. Kept from that
        path: nothing is delivered while the flow is stopped (a rebalance; recovery seeks these partitions itself
        afterwards), nor for partitions Faust does not consider active, nor below the partition's read offset; the
        read offset then moves to the run's last record. Private Faust internals (faust-streaming 0.15.3,
        ``tests/unit/test_runtime_internals.py``): ``_read_offset`` and ``_buffered_partitions``.
        """
        recovery = cast(Any, self.app.tables).recovery
        batched: Callable[[TP], bool] | None = getattr(recovery, "batched", None)
        if batched is None or not self.flow_active:
            return records
        changelogs = self.app.tables.changelog_topics
        rest: dict[TP, list[Any]] = {}
        for tp, run in records.items():
            taken = (
                tp.topic in changelogs
                and (active is None or tp in active or tp in self._buffered_partitions)
                and batched(tp)
            )
            if not taken:
                rest[tp] = run
                continue
            read = self._read_offset[tp]
            fresh = run if read is None else [r for r in run if r.offset >= read]
            if not fresh:
                continue
            try:
                recovery.apply_fetched(tp, fresh)
            except Exception:  # the fetcher must go on: Faust's own path gets the run (it logs and retries)
                self.log.exception("batched replay of %s failed; its records go through Faust's path", tp)
                rest[tp] = run
                continue
            self._read_offset[tp] = fresh[-1].offset
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
        return rest

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised against the broker
        consumer_stopped = cast(Service, self)._stopped.is_set
        fetcher_stopped = cast(Service, fetcher)._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                await self.sleep(0)
                if not self.should_stop:
                    refetch = await self._deliver(self.getmany(timeout=1.0))
                    if refetch:
                        self.refetches += len(refetch)
                        await self._seek_back(refetch)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    #: Records handed over between yields to the event loop (health checks, web) on a long batch.
    YIELD_EVERY: ClassVar[int] = 100

    async def _deliver(self, batch: AsyncIterator[tuple[TP, Message]]) -> set[TP]:
        """Deliver one fetched batch; returns the stream partitions that must be fetched again from committed."""
        refetch: set[TP] = set()
        changelogs = self.app.tables.changelog_topics
        since_yield = 0
        async for tp, message in batch:
            since_yield += 1
            if since_yield > self.YIELD_EVERY:
                await asyncio.sleep(0)
                since_yield = 0
            changelog = tp.topic in changelogs
            decision = decide(
                message.offset,
                self._read_offset[tp],
                stale=self._fetch_epoch != self._epoch,
                changelog=changelog,
            )
            if decision.verdict is Verdict.REFETCH:
                refetch.add(tp)
                continue
            if decision.verdict is Verdict.DROP:
                self.log.dev("DROPPED MESSAGE ROFF %r", message.offset)
                continue
            if decision.gap is not None and self.app.topics.acks_enabled_for(message.topic):
                await self._add_gap(tp, *decision.gap)
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            epoch = self._epoch
            if epoch != self._fetch_epoch and not changelog:
                refetch.add(tp)  # a seek slipped in while booking the gap or committing
                continue
            await hand_over(self.callback(message), self._race_flow_stop)
            if changelog or self._epoch == epoch:
                self._read_offset[tp] = message.offset
            else:
                refetch.add(tp)  # the flow stopped while it waited: maybe never delivered
        return refetch

    async def _race_flow_stop(self, rest: Coroutine[Any, Any, None]) -> None:
        await self.wait_first(rest, self.suspend_flow.wait())

    async def _seek_back(self, tps: Iterable[TP]) -> None:
        """Send stale partitions back to their committed offsets. With the flow stopped a rebalance is under way and
        ends with that very seek, so there is nothing to do."""
        if not self.flow_active:
            return
        self.log.info(
            "Seeking back %s: records fetched before the latest seek were not delivered", sorted(tps)
        )
        await self.perform_seek()


class GuardedTransport(faust_aiokafka.Transport):
    Consumer = GuardedConsumer


def install() -> None:
    """Make ``kafka-guarded://`` resolve to :class:`GuardedTransport` (idempotent)."""
    drivers.TRANSPORTS.aliases[SCHEME] = f"{__name__}:GuardedTransport"
