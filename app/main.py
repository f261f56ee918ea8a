"""The Faust app "switchyard", built from settings, with every catalog domain discovered explicitly.

A domain package is discovered from the catalog's ``domains:`` section: its ``rules.RULES`` runs on the stage
engine (the catalog's ``exactly_once`` flag picks the driver, :meth:`Runtime.register_domain`), its optional
``views.register(runtime)`` adds HTTP endpoints. Adding a sixth domain is one package plus one catalog entry.
"""

from __future__ import annotations

import importlib
import logging
import socket
import ssl
from typing import Any, cast

import faust

from app.core import fetchguard, tablestore
from app.core.catalog import Catalog, load_catalog
from app.core.clock import Clock, utc_now
from app.core.metrics import Metrics
from app.core.registry import register_avro_topics
from app.core.runtime import Runtime
from app.core.tracing import Tracing
from app.core.web import register_core_views
from app.settings import Settings

log = logging.getLogger("switchyard")

#: The producer waits this long to fill a batch. Faust's default (0) sends a produce request per record as soon as
#: the sender is free: under load that was 7 % of a worker's CPU in socket writes alone.
PRODUCER_LINGER_SECONDS = 0.005


def worker_id(settings: Settings) -> str:
    return settings.worker_id or f"{socket.gethostname()}-{settings.web_port}"


def faust_credentials(settings: Settings) -> Any:
    if settings.security_protocol == "PLAINTEXT":
        return None
    ssl_context = cast("ssl.SSLContext | None", settings.kafka_client_options().get("ssl_context"))
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.sasl_username,
            password=settings.sasl_password.get_secret_value(),
            mechanism=settings.sasl_mechanism,
            ssl_context=ssl_context,
        )
    return faust.SSLCredentials(ssl_context)


def build_faust_app(settings: Settings) -> faust.App:
    datadir = settings.data_dir / settings.app_id / worker_id(settings)
    datadir.mkdir(parents=True, exist_ok=True)
    fetchguard.install()
    brokers = [f"{fetchguard.SCHEME}://{b.strip()}" for b in settings.broker.split(",") if b.strip()]
    app = faust.App(
        settings.app_id,
        broker=brokers,
        broker_credentials=faust_credentials(settings),
        store=tablestore.store_url(settings.store, settings.table_memory_mb),
        datadir=str(datadir),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=PRODUCER_LINGER_SECONDS,
        producer_compression_type=settings.producer_options()["compression_type"],
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        web_cors_options=None,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        table_standby_replicas=settings.standby_replicas,
        table_cleanup_interval=30.0,
    )
    if settings.table_memory_mb > 0:
        tablestore.install(app, settings.table_memory_mb)
    return app


def discover(runtime: Runtime, domains: Catalog | None = None) -> list[str]:
    """Import and register every enabled catalog domain. Returns the names registered."""
    cat = domains or runtime.catalog
    wanted = runtime.settings.domain_filter
    registered = []
    for name, entry in cat.domains.items():
        if wanted and name not in wanted:
            continue
        runtime.register_domain(importlib.import_module(f"{entry.package}.rules").RULES)
        try:
            views = importlib.import_module(f"{entry.package}.views")
        except ModuleNotFoundError as exc:
            if exc.name != f"{entry.package}.views":
                raise
        else:
            views.register(runtime)
        registered.append(name)
    return registered


def create_app(
    settings: Settings | None = None,
    *,
    metrics: Metrics | None = None,
    clock: Clock = utc_now,
    tracing: Tracing | None = None,
) -> Runtime:
    """The worker: every catalog domain, the CRM sink and the monitor on one Faust app. Tracing is read from the
    ``OTEL_*`` environment unless given (:mod:`app.core.tracing`; off when no exporter is configured)."""
    settings = settings or Settings()
    catalog = load_catalog(settings.catalog_file)
    runtime = Runtime(
        build_faust_app(settings),
        settings,
        catalog,
        metrics or Metrics(),
        clock,
        avro_ids=register_avro_topics(settings, catalog),
        tracing=tracing if tracing is not None else Tracing.from_env(),
    )
    register_core_views(runtime)
    discover(runtime)
    wants_crm = not settings.domain_filter or "crm" in settings.domain_filter
    if settings.crm_enabled and wants_crm and "crm.commands" in runtime.catalog.topics:
        from app.sinks.crm.service import CrmSinkService

        CrmSinkService(runtime).register()
    from app.core.monitor import install_monitor

    install_monitor(runtime)
    return runtime
