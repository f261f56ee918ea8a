"""Every series the dashboard and the alert rules query is one a worker really exposes.

A renamed metric would otherwise leave a panel silently empty and an alert that can never fire. The
authoritative check runs a real worker and reads its ``/metrics``; it compares against metric *families* (HELP
and TYPE lines) because prometheus_client exposes a labelled metric's samples only after a first observation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.metrics import Metrics
from app.sinks.crm.metrics import CrmMetrics
from tests.ops.queries import all_exprs, dashboard_variable_queries, series_used
from tests.worker import Deployment

CATALOG = str(Path(__file__).parents[1] / "integration" / "testdomain" / "catalog.yaml")

_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count", ""),
}


def exposed_series(families: dict[str, str]) -> set[str]:
    """Series names a family of each type produces: ``{family: type}`` as the HELP/TYPE lines give them."""
    names: set[str] = set()
    for family, kind in families.items():
        base = family.removesuffix("_total") if kind == "counter" else family
        names.update(base + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    return names


def families_of(exposition: str) -> dict[str, str]:
    """``{family: type}`` from the ``# TYPE`` lines of a Prometheus text exposition."""
    found: dict[str, str] = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            found[name] = kind.strip()
    return found


def queried() -> dict[str, set[str]]:
    return series_used(all_exprs() + dashboard_variable_queries())


def in_process_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{family: (type, label names)}`` of the metrics a worker registers: app/core/metrics.py's and the CRM
    sink's own (app/sinks/crm/metrics.py)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for attr in [*vars(Metrics()).values(), *vars(CrmMetrics()).values()]:
        name, kind, labels = (getattr(attr, a, None) for a in ("_name", "_type", "_labelnames"))
        if isinstance(name, str) and isinstance(kind, str):
            out[name + ("_total" if kind == "counter" else "")] = (kind, tuple(labels or ()))
    return out


def test_the_queries_name_series_at_all() -> None:
    used = queried()
    assert len(used) >= 20, sorted(used)


def test_every_queried_series_is_registered_with_the_labels_it_is_matched_on() -> None:
    registered = in_process_metrics()
    exposed = exposed_series({name: kind for name, (kind, _) in registered.items()})
    assert set(queried()) - exposed == set()
    labels_of = {
        series: set(labels) | ({"le"} if series.endswith("_bucket") else set())
        for name, (kind, labels) in registered.items()
        for series in exposed_series({name: kind})
    }
    wrong = {
        series: sorted(labels - labels_of[series])
        for series, labels in queried().items()
        if labels - labels_of[series]
    }
    assert wrong == {}


def test_a_renamed_metric_would_be_caught() -> None:
    used = series_used(["sum(rate(switchyard_events_ingested_total[5m]))"])
    exposed = exposed_series({name: kind for name, (kind, _) in in_process_metrics().items()})
    assert set(used) - exposed == {"switchyard_events_ingested_total"}


def test_histograms_are_queried_through_their_series_not_their_family_name() -> None:
    exposed = exposed_series(
        {"switchyard_processing_seconds": "histogram", "switchyard_events_in_total": "counter"}
    )
    assert exposed == {
        "switchyard_processing_seconds_bucket",
        "switchyard_processing_seconds_sum",
        "switchyard_processing_seconds_count",
        "switchyard_events_in_total",
    }


@pytest.fixture
def worker_metrics(kafka_bootstrap: str, tmp_path: Path, unique_name: Any) -> Iterator[str]:
    d = Deployment(
        kafka_bootstrap,
        unique_name("ops").replace(".", "-"),
        tmp_path,
        SWITCHYARD_CATALOG_FILE=CATALOG,
        SWITCHYARD_CRM_ENABLED="false",  # the test-only catalog has no crm.commands; the metrics exist anyway
    )
    try:
        w = d.worker().start()
        response = w.get("/metrics")
        assert response.status_code == 200
        yield response.text
    finally:
        d.stop_all()


@pytest.mark.integration
def test_a_running_worker_exposes_every_series_the_dashboard_and_alerts_query(worker_metrics: str) -> None:
    families = families_of(worker_metrics)
    assert families, worker_metrics[:500]
    missing = set(queried()) - exposed_series(families)
    assert missing == set(), f"queried but not in a worker's /metrics: {sorted(missing)}"


def sample(exposition: str, series: str) -> float:
    """The value of an unlabelled series in a Prometheus text exposition."""
    for line in exposition.splitlines():
        name, _, value = line.partition(" ")
        if name == series:
            return float(value)
    raise AssertionError(f"{series} not exposed")


@pytest.mark.integration
def test_a_ready_worker_has_timed_the_table_recovery_of_its_assignment(worker_metrics: str) -> None:
    assert sample(worker_metrics, "switchyard_table_recovery_seconds_count") >= 1
    assert sample(worker_metrics, "switchyard_table_recovering") == 0
