"""The sink's metrics hooks bound to its Prometheus series (:class:`~app.sinks.crm.metrics.CrmMetrics`)."""

from __future__ import annotations

from app.sinks.crm.metrics import CrmMetrics


class PrometheusHooks:
    """:class:`~app.sinks.crm.sink.SinkHooks` writing the ``switchyard_crm_*`` series."""

    def __init__(self, metrics: CrmMetrics) -> None:
        self.m = metrics

    def call(self, op: str, status: str) -> None:
        self.m.calls.labels(op=op, status=status).inc()

    def commands(self, op: str, outcome: str, count: int) -> None:
        self.m.commands.labels(op=op, outcome=outcome).inc(count)

    def batch_size(self, op: str, size: int) -> None:
        self.m.batch_size.observe(size)

    def rate_limit_wait(self, seconds: float) -> None:
        self.m.rate_limit_wait.inc(seconds)

    def breaker_state(self, state: str) -> None:
        self.m.breaker_open.set(0 if state == "closed" else 1)

    def ack_latency(self, seconds: float) -> None:
        self.m.ack_seconds.observe(seconds)
