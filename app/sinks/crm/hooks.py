"""The sink's metrics hooks bound to the one Prometheus registry (``app.core.metrics.Metrics``)."""

from __future__ import annotations

from app.core.metrics import Metrics


class PrometheusHooks:
    """:class:`~app.sinks.crm.sink.SinkHooks` writing the ``switchyard_crm_*`` series."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def call(self, op: str, status: str) -> None:
        self.m.crm_calls.labels(op=op, status=status).inc()

    def commands(self, op: str, outcome: str, count: int) -> None:
        self.m.crm_commands.labels(op=op, outcome=outcome).inc(count)

    def batch_size(self, op: str, size: int) -> None:
        self.m.crm_batch_size.observe(size)

    def rate_limit_wait(self, seconds: float) -> None:
        self.m.crm_rate_limit_wait.inc(seconds)

    def breaker_state(self, state: str) -> None:
        self.m.crm_breaker_open.set(0 if state == "closed" else 1)

    def ack_latency(self, seconds: float) -> None:
        self.m.crm_ack_seconds.observe(seconds)
