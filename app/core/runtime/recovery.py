"""Table recovery and standby replay one fetched batch at a time, instead of one Faust event per changelog record.

Faust replays a changelog record by record: the consumer hands each record to the conductor, the table's
changelog channel decodes its key and value into an event and puts it on a bounded queue (racing the flow stop
with a task per record whenever the queue is full), and the recovery service takes it off with a timed
``wait_for`` (another task per record), checks after every record whether recovery is complete, and buffers it
until a thousand of its table's records are waiting. A py-spy profile of a worker rebuilding 100,000 keys spent
most of its samples there and under 1 % in RocksDB: about 200 us of Python per record, 11.8-53 s for the bench's
100k-key table depending on the load of the box.

Here the guarded consumer (:mod:`app.core.runtime.fetchguard`) takes the changelog records out of each fetched batch,
before Faust makes a message of any of them, and hands each partition's run to :meth:`BatchRecovery.apply_fetched`,
which does what Faust's loop does for those records, once per run: drop what was already applied (offsets at or below the partition's recovery
offset), write the rest into the partition's RocksDB store in one write batch with the persisted offset in that
same batch (:func:`app.core.runtime.tablestore.write_changelog`; Faust writes it separately after the batch), advance the
recovery offset, and signal the end of recovery or the standbys' readiness as Faust's loop would. The changelog
format, its partitions, and what the persisted offset means are Faust's, unchanged: a store recovered this way is
byte for byte the store Faust's own path writes, and a later recovery or standby reads from the same offset.

Tables whose store is not RocksDB, or that have an ``on_changelog_event`` callback (a windowed table, or a
callback a domain passed), keep Faust's per-record path.

Private Faust internals used (checked against faust-streaming 0.15.3; ``tests/unit/test_runtime_internals.py``
fails if they move): the recovery service's ``active_tps``, ``standby_tps``, ``tp_to_table``, ``active_offsets``,
``standby_offsets``, ``_active_events_received_at``, ``_standby_events_received_at``, ``_last_flush_at``,
``_standbys_span``, ``_set_recovery_started``, ``_set_recovery_ended``, ``signal_recovery_end``, ``flush_buffers``,
``need_recovery``, ``standby_remaining_total``, ``_wait`` and ``RebalanceAgain``; the table manager's ``_recovery``;
the table's ``_on_changelog_event``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from time import monotonic
from typing import Any

from faust.stores.rocksdb import Store as RocksDBStore
from faust.tables import TableManager
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP
from faust.utils.tracing import finish_span

from app.core.runtime.tablestore import ChangelogRecord, write_changelog

log = logging.getLogger("switchyard.recovery")


def batchable(table: Any) -> bool:
    """Whether ``table``'s changelog records can be applied a batch at a time: its store is Faust's RocksDB store on
    the rocksdict driver (the shared-memory one included) and nothing wants to see each changelog event."""
    store = table.data
    return isinstance(store, RocksDBStore) and store.use_rocksdict and table._on_changelog_event is None


class BatchRecovery(Recovery):
    """Faust's recovery service, plus :meth:`apply_fetched` for a fetched run of one changelog partition."""

    def batched(self, tp: TP) -> bool:
        """Whether the consumer should hand ``tp``'s records to :meth:`apply_fetched` rather than Faust's
        per-record callback. Decided per partition from its table, so a partition never mixes both paths."""
        table = self.tables._changelogs.get(tp.topic)
        return table is not None and batchable(table)

    def apply_fetched(self, tp: TP, messages: Sequence[ChangelogRecord]) -> None:
        """Apply ``messages`` (one changelog partition, in offset order, as fetched) to its table.

        What Faust's per-record loop does for each record, done once for the run: a partition that is neither
        being recovered nor a standby here (revoked while the fetch was in flight) is not ours to write; records
        at or below the partition's offset were applied already (a refetch after a seek); the rest go to the
        store with the persisted offset, the offset moves to the last of them, and when that completes the
        active recovery or brings the standbys up to date, the waiting recovery is told."""
        if tp in self.active_tps:
            offsets, received_at = self.active_offsets, self._active_events_received_at
        elif tp in self.standby_tps:
            offsets, received_at = self.standby_offsets, self._standby_events_received_at
        else:
            log.warning("changelog records of %s dropped: neither recovering nor standby here", tp)
            return
        seen = offsets.get(tp)
        fresh = messages if seen is None else [m for m in messages if m.offset > seen]
        if not fresh:
            return
        table: Any = self.tp_to_table[tp]
        last = fresh[-1].offset
        write_changelog(table.data, tp.partition, fresh, last)
        offsets[tp] = last
        now = monotonic()
        received_at[tp] = now
        self._last_flush_at = now
        self._signal_progress()

    def _signal_progress(self) -> None:
        # As Faust's loop does after each record: actives done -> flush what the per-record path buffered, mark
        # recovery ended, wake the recovery task; standbys caught up -> the table manager learns it once.
        if self.in_recovery and not self.need_recovery():
            self.flush_buffers()
            self._set_recovery_ended()
            self.signal_recovery_end.set()
        if (
            not (self._standbys_span is None and self.tables.standbys_ready)
            and not self.standby_remaining_total()
        ):
            if self._standbys_span is not None:
                finish_span(self._standbys_span)
                self._standbys_span = None
            self.tables.on_standbys_ready()

    async def _wait(self, coro: Any, timeout: Any = None) -> None:
        """Faust's wait for a recovery step, or for the next rebalance, whichever comes first; plus: a step that
        completed while a rebalance began is a rebalance too.

        Faust's ``_wait`` raises ``RebalanceAgain`` only when the rebalance's signal is among the first waits done.
        When the step completes first (here: the end of recovery, reached the moment a new rebalance began) and the
        recovery task resumes only after the new assignment was installed (the event loop busy closing and opening
        stores for it), Faust goes on with the old step against the new partition sets. In a rebalance storm a
        worker crashed that way, seeking its new standby partitions to offsets not yet built (``ValueError: Offset
        must be a positive integer``, logged right after the new generation's assignment). Now it starts over, as
        it does when the rebalance wins the race."""
        await super()._wait(coro, timeout)
        if self.signal_recovery_start.is_set():
            raise RebalanceAgain()

    def _set_recovery_started(self) -> None:
        """Also forget the end of the previous recovery. Faust's loop clears the end signal before each record it
        waits for; batches set it without that loop turning, so a new recovery must not find it still set."""
        self.signal_recovery_end.clear()
        super()._set_recovery_started()


class BatchTableManager(TableManager):
    """Faust's table manager with :class:`BatchRecovery` (``faust.App(TableManager=...)``)."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = BatchRecovery(self.app, self, beacon=self.beacon, loop=self.loop)
        return self._recovery


#: The ``TableManager`` setting of ``faust.App`` that selects :class:`BatchTableManager`.
TABLE_MANAGER = f"{__name__}:BatchTableManager"
