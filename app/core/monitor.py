"""Gauges that need polling (consumer lag per partition, table sizes, readiness) and the rebalance counter."""

from __future__ import annotations

import logging
from typing import Any

from app.core.runtime import Runtime
from app.core.web import is_ready

log = logging.getLogger("switchyard.monitor")

POLL_SECONDS = 5.0


def install_monitor(runtime: Runtime) -> None:
    app = runtime.app
    m = runtime.metrics

    async def on_assigned(sender: Any, *args: Any, signal: Any, **kwargs: Any) -> None:
        m.rebalances.inc()
        log.info("partitions assigned: %d", len(args[0]) if args else -1)

    signal_: Any = app.on_partitions_assigned  # faust types the handler too narrowly for coroutines
    signal_.connect(on_assigned)

    async def poll() -> None:
        m.ready.set(1 if is_ready(runtime) else 0)
        consumer = getattr(app, "_consumer", None)
        if consumer is None:
            return
        m.consumer_lag.clear()
        for tp in consumer.assignment():
            try:
                high = consumer.highwater(tp)
            except Exception:  # not fetched yet for this partition
                continue
            committed = consumer._committed_offset.get(tp)
            if high is None:
                continue
            m.consumer_lag.labels(tp.topic, str(tp.partition)).set(max(high - (committed or 0), 0))
        for (domain, name), holder in runtime.tables.items():
            try:
                m.table_keys.labels(f"{domain}.{name}").set(len(holder.table))
            except Exception:
                log.debug("table %s.%s size not available yet", domain, name)

    app.timer(POLL_SECONDS)(poll)
