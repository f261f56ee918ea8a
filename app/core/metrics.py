"""The worker's Prometheus metrics (records, stages, Kafka, tables, webhooks), on an injected registry.

A component with series of its own keeps them beside it on the same registry (the CRM sink:
:mod:`app.sinks.crm.metrics`), so core knows no sink.

Names follow ``switchyard_<what>_<unit>``; counters end in ``_total``; durations are seconds. Labels are bounded
sets (domain, event_type, topic, stage, error_code, outcome, status): never a user id, e-mail or free text, so
personal data cannot leak through ``/metrics`` and cardinality stays small.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600, 86400, 604800)


class Metrics:
    """Built once per process with the registry it should register on (tests pass a fresh one)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # --- records ---------------------------------------------------------------------------------------
        self.events_in = Counter("switchyard_events_in_total", "Raw records consumed", ["domain"], registry=r)
        self.events_accepted = Counter(
            "switchyard_events_accepted_total",
            "Records validated and routed",
            ["domain", "event_type"],
            registry=r,
        )
        self.events_rejected = Counter(
            "switchyard_events_rejected_total",
            "Records dead-lettered, by stage and stable error code",
            ["domain", "stage", "error_code"],
            registry=r,
        )
        self.dlq_writes = Counter(
            "switchyard_deadletter_writes_total",
            "Records written to a dead-letter topic",
            ["topic"],
            registry=r,
        )
        self.dedupe_hits = Counter(
            "switchyard_dedupe_hits_total",
            "Redelivered events recognised and skipped",
            ["domain"],
            registry=r,
        )
        self.outputs = Counter(
            "switchyard_outputs_total", "Records produced, by catalog topic", ["topic"], registry=r
        )
        self.batch_retries = Counter(
            "switchyard_batch_retries_total",
            "Batches whose handling failed (producer, store) and is retried: their records are neither lost "
            "nor committed until it succeeds",
            ["stage"],
            registry=r,
        )
        self.processing_seconds = Histogram(
            "switchyard_processing_seconds",
            "Time from consuming a record to having its outputs acknowledged",
            ["domain"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.e2e_lag_seconds = Histogram(
            "switchyard_end_to_end_lag_seconds",
            "Now minus the event's own time (or its Kafka timestamp) when processed",
            ["domain"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.last_event_time = Gauge(
            "switchyard_last_event_timestamp_seconds",
            "Unix time of the last record consumed",
            ["domain"],
            registry=r,
        )
        # --- Kafka / worker --------------------------------------------------------------------------------
        self.consumer_lag = Gauge(
            "switchyard_consumer_lag_records",
            "High watermark minus committed offset, per assigned partition",
            ["topic", "partition"],
            registry=r,
        )
        self.rebalances = Counter("switchyard_rebalances_total", "Consumer group rebalances seen", registry=r)
        self.consumer_refetches = Counter(
            "switchyard_consumer_refetches_total",
            "Stream partitions sought back to their committed offset because records fetched before a seek were"
            " withheld (docs/DESIGN-NOTES.md, note 7)",
            registry=r,
        )
        self.ready = Gauge(
            "switchyard_worker_ready", "1 when partitions are assigned and tables recovered", registry=r
        )
        self.table_keys = Gauge("switchyard_table_keys", "Keys held locally per table", ["table"], registry=r)
        self.table_recovery_seconds = Histogram(
            "switchyard_table_recovery_seconds",
            "From partitions assigned to tables recovered from their changelogs (the fail-over gap)",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.table_recovering = Gauge(
            "switchyard_table_recovering",
            "1 while tables are being rebuilt from their changelogs",
            registry=r,
        )
        self.table_memory_bytes = Gauge(
            "switchyard_table_memory_bytes",
            "RocksDB memory of every table partition (shared block cache, memtables charged to it)",
            registry=r,
        )
        self.table_updates = Counter(
            "switchyard_table_updates_total",
            "Values folded into a table, by outcome (applied, unchanged, or one the fold names, e.g. stale)",
            ["table", "outcome"],
            registry=r,
        )
        self.transactions = Counter(
            "switchyard_transactions_total",
            "Kafka transactions by outcome",
            ["domain", "outcome"],
            registry=r,
        )
        self.webhook_requests = Counter(
            "switchyard_webhook_requests_total",
            "Webhook deliveries by source and HTTP status",
            ["source", "status"],
            registry=r,
        )
