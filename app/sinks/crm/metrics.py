"""The CRM sink's own Prometheus series (``switchyard_crm_*``), registered on the registry it is handed.

They used to live in :mod:`app.core.metrics`, so core knew the sink. The sink owns them now and the integrator
(the worker's :class:`~app.sinks.crm.service.CrmSinkService`) passes the process's one registry, so ``/metrics``
still shows every series of the worker. The stage series the sink shares with the domains (events in,
processing time, rejections, lag) stay core's. Same naming rules as core: bounded labels, units in the name.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from app.core.metrics import LAG_BUCKETS


class CrmMetrics:
    """Built once per registry (a second set on the same registry is refused by prometheus_client)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.calls = Counter(
            "switchyard_crm_calls_total", "CRM HTTP calls by status", ["op", "status"], registry=r
        )
        self.commands = Counter(
            "switchyard_crm_commands_total", "CRM commands by outcome", ["op", "outcome"], registry=r
        )
        self.batch_size = Histogram(
            "switchyard_crm_batch_size",
            "Commands per CRM call",
            buckets=(1, 2, 5, 10, 25, 50, 75, 100),
            registry=r,
        )
        self.queue_depth = Gauge("switchyard_crm_queue_depth", "Commands waiting for the CRM", registry=r)
        self.rate_limit_wait = Counter(
            "switchyard_crm_rate_limit_wait_seconds_total",
            "Seconds spent waiting for the call budget",
            registry=r,
        )
        self.breaker_open = Gauge(
            "switchyard_crm_breaker_open", "1 while the CRM circuit breaker is open", registry=r
        )
        self.ack_seconds = Histogram(
            "switchyard_crm_ack_seconds",
            "Command issue time to CRM acknowledgement",
            buckets=LAG_BUCKETS,
            registry=r,
        )
