"""The ``faust.App`` of a worker, built from settings: the one place Faust's app options are chosen.

It lives in the runtime package (not :mod:`app.main`) so that Faust stays behind one door: the guarded transport
(:mod:`.fetchguard`), the shared-memory table store (:mod:`.tablestore`), batched table recovery
(:mod:`.recovery`) and the credentials all meet here.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any, cast

import faust

from app.core.runtime import fetchguard, recovery, tablestore
from app.settings import Settings

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
    producer = settings.producer_options()  # what every producer of the worker is given, Faust's too
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
        producer_compression_type=producer["compression_type"],
        producer_max_request_size=producer["max_request_size"],
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
        TableManager=recovery.TABLE_MANAGER,
    )
    if settings.table_memory_mb > 0:
        tablestore.install(app, settings.table_memory_mb)
    return app
