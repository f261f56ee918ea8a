"""The worker "switchyard": a runtime built from settings, with every catalog domain discovered explicitly.

The ``faust.App`` itself is built by :func:`app.core.runtime.build_faust_app`: only the runtime package knows Faust.

A domain package is discovered from the catalog's ``domains:`` section: its ``DOMAIN``'s rules run on the stage
engine (the catalog's ``exactly_once`` flag picks the driver, :meth:`Runtime.register_domain`), its views add HTTP
endpoints (:mod:`app.core.domain`). Adding a sixth domain is one package plus its catalog entries.
"""

from __future__ import annotations

import logging

from app.core.catalog import Catalog, catalog_of
from app.core.clock import Clock, utc_now
from app.core.domain import load_domain
from app.core.metrics import Metrics
from app.core.registry import register_avro_topics
from app.core.runtime import Runtime, build_faust_app, install_monitor, register_core_views
from app.core.tracing import Tracing
from app.settings import Settings
from app.sinks.crm.metrics import CrmMetrics

log = logging.getLogger("switchyard")


def discover(runtime: Runtime, catalog: Catalog | None = None) -> list[str]:
    """Register every enabled catalog domain: its rules on the stage engine, its HTTP views. Returns the names."""
    cat = catalog or runtime.catalog
    wanted = runtime.settings.domain_filter
    registered = []
    for name in cat.domains:
        if wanted and name not in wanted:
            continue
        domain = load_domain(cat, name)
        runtime.register_domain(domain.rules)
        domain.register_views(runtime)
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
    catalog = catalog_of(settings)
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
    # The CRM series are registered whether or not this worker runs the sink: the dashboard and alerts query
    # them, and a worker without the sink shows zeros rather than "no data" (tests/ops/test_metric_names.py).
    crm_metrics = CrmMetrics(runtime.metrics.registry)
    wants_crm = not settings.domain_filter or "crm" in settings.domain_filter
    if settings.crm_enabled and wants_crm and "crm.commands" in runtime.catalog.topics:
        from app.sinks.crm.service import CrmSinkService

        CrmSinkService(runtime, metrics=crm_metrics).register()
    install_monitor(runtime)
    return runtime
