"""The Grafana dashboard and its provisioning: the sections SREs look for, and queries Prometheus can parse."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.paths import ROOT
from tests.ops.queries import DASHBOARD, as_rules_file, dashboard_exprs, dashboard_panels

GRAFANA = ROOT / "deploy" / "grafana"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return doc


def rows(dashboard: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each row with the panels under it (rows are flat in the panel list when expanded)."""
    out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            out.append((panel, list(panel.get("panels", []))))
        elif out:
            out[-1][1].append(panel)
    return out


def exprs_of(panels: list[dict[str, Any]]) -> str:
    return "\n".join(t["expr"] for p in panels for t in p.get("targets", []))


def test_one_row_repeats_for_every_domain_with_flow_latency_and_lag(dashboard: dict[str, Any]) -> None:
    variable = next(v for v in dashboard["templating"]["list"] if v["name"] == "domain")
    assert variable["includeAll"] and variable["multi"]
    assert "label_values(switchyard_events_in_total, domain)" in variable["definition"]
    repeated = [(row, panels) for row, panels in rows(dashboard) if row.get("repeat") == "domain"]
    assert len(repeated) == 1
    queries = exprs_of(repeated[0][1])
    for series in (
        "switchyard_events_in_total",
        "switchyard_events_accepted_total",
        "switchyard_events_rejected_total",
        "switchyard_processing_seconds_bucket",
        "switchyard_consumer_lag_records",
        "switchyard_end_to_end_lag_seconds_bucket",
    ):
        assert series in queries, series
    assert all("$domain" in t["expr"] for p in repeated[0][1] for t in p["targets"])


@pytest.mark.parametrize(
    ("title", "series"),
    [
        ("Dead letters", ["switchyard_events_rejected_total", "error_code"]),
        (
            "CRM sink",
            [
                "switchyard_crm_calls_total",
                "switchyard_crm_batch_size",
                "switchyard_crm_rate_limit_wait_seconds_total",
                "switchyard_crm_breaker_open",
            ],
        ),
        (
            "Tables",
            [
                "switchyard_table_keys",
                "switchyard_table_recovery_seconds",
                "switchyard_table_recovering",
                "switchyard_table_memory_bytes",
            ],
        ),
        ("Workers", ["switchyard_rebalances_total", "switchyard_worker_ready"]),
    ],
)
def test_the_shared_sections_exist(dashboard: dict[str, Any], title: str, series: list[str]) -> None:
    panels = next(panels for row, panels in rows(dashboard) if row["title"] == title)
    queries = exprs_of(panels)
    for name in series:
        assert name in queries, f"{title}: {name}"


def test_panels_have_unique_ids_a_datasource_variable_and_do_not_overlap(dashboard: dict[str, Any]) -> None:
    panels = list(dashboard_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
        for target in p.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}", p["title"]


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "dashboard_queries.yml"
    rules.write_text(as_rules_file(dashboard_exprs()))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_query_would_be_caught(promtool: str, tmp_path: Path) -> None:
    rules = tmp_path / "broken.yml"
    rules.write_text(as_rules_file(["sum by (domain (rate(switchyard_events_in_total[$__rate_interval]))"]))
    done = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, timeout=60, check=False
    )
    assert done.returncode != 0


def test_provisioning_points_at_prometheus_and_at_the_dashboards_directory() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"]
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "switchyard.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
