"""Gauges that need polling (consumer lag per partition, table sizes, readiness) and the rebalance counter."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from app.core.runtime.internals import committed_offset, started_consumer
from app.core.runtime.tablestore import TableMemory, memory_of
from app.core.runtime.web import is_ready
from app.core.runtime.worker import Runtime

log = logging.getLogger("switchyard.monitor")

POLL_SECONDS = 5.0


def install_monitor(runtime: Runtime) -> None:
    app = runtime.app
    m = runtime.metrics

    assigned_at: list[float] = []  # monotonic time of the assignment whose recovery is running

    async def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        m.rebalances.inc()
        assigned_at[:] = [time.monotonic()]
        m.table_recovering.set(1)
        log.info("partitions assigned: %d", len(args[0]) if args else -1)

    async def on_recovered(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        """Faust sends this when the tables of the latest assignment are rebuilt (not for a superseded one)."""
        m.table_recovering.set(0)
        if assigned_at:
            seconds = time.monotonic() - assigned_at.pop()
            m.table_recovery_seconds.observe(seconds)
            log.info("tables recovered %.1f s after the assignment", seconds)

    # faust types the handlers too narrowly for coroutines
    assigned: Any = app.on_partitions_assigned
    assigned.connect(on_assigned)
    recovered: Any = app.on_rebalance_complete
    recovered.connect(on_recovered)
    memory: TableMemory | None = memory_of(app)
    refetches_seen = [0]
    last_lag: dict[Callable[[], Awaitable[list[tuple[str, int, int]]]], list[tuple[str, int, int]]] = {}

    async def poll() -> None:
        m.ready.set(1 if is_ready(runtime) else 0)
        if memory is not None:
            m.table_memory_bytes.set(memory.usage_bytes())
        lag: list[tuple[str, int, int]] = []
        consumer = started_consumer(app)
        if consumer is not None:
            refetches = getattr(consumer, "refetches", 0)  # the guarded consumer's running count
            m.consumer_refetches.inc(refetches - refetches_seen[0])
            refetches_seen[0] = refetches
            for tp in consumer.assignment():
                try:
                    high = consumer.highwater(tp)
                except Exception:  # not fetched yet for this partition
                    continue
                committed = committed_offset(consumer, tp)
                if high is not None:
                    lag.append((tp.topic, tp.partition, max(high - (committed or 0), 0)))
        # The worker's other consumer groups (exactly-once stages, the CRM sink) report the same series.
        for source in runtime.lag_sources:
            # A rebalance or a broker away: the source's last figures stand until the next poll.
            try:
                last_lag[source] = await source()
            except Exception as exc:
                log.debug("lag not available this time: %r", exc)
            lag += last_lag.get(source, [])
        # Replaced at once, after every await: a scrape never sees the series half gone.
        m.consumer_lag.clear()
        for topic, partition, behind in lag:
            m.consumer_lag.labels(topic, str(partition)).set(behind)
        for (domain, name), holder in runtime.tables.items():
            try:
                m.table_keys.labels(f"{domain}.{name}").set(len(holder.table))
            except Exception:
                log.debug("table %s.%s size not available yet", domain, name)

    app.timer(POLL_SECONDS)(poll)
