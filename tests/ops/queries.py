"""Every PromQL expression the shipped dashboard and alert rules run, and the Switchyard series they name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from app.paths import ROOT

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "switchyard.json"

_SERIES = re.compile(r"\b(switchyard_[a-z0-9_]+)\b(\{[^}]*\})?")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")


def dashboard_panels(dashboard: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    doc = dashboard if dashboard is not None else json.loads(DASHBOARD.read_text())
    for panel in doc["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]


def alert_exprs(path: Path = ALERTS) -> list[str]:
    doc = yaml.safe_load(path.read_text())
    return [str(rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def dashboard_variable_queries() -> list[str]:
    """Template-variable queries (Grafana's ``label_values(...)``, not PromQL, but they name series too)."""
    doc = json.loads(DASHBOARD.read_text())
    return [v["definition"] for v in doc["templating"]["list"] if v.get("type") == "query"]


def all_exprs() -> list[str]:
    return dashboard_exprs() + alert_exprs()


def series_used(exprs: list[str]) -> dict[str, set[str]]:
    """Series name -> label names its selectors match on (``{domain="..."}``), over ``exprs``."""
    used: dict[str, set[str]] = {}
    for expr in exprs:
        for name, selector in _SERIES.findall(expr):
            labels = used.setdefault(name, set())
            if selector:
                inner = re.sub(r'"(?:[^"\\]|\\.)*"', '""', selector)
                labels.update(_MATCHER_LABEL.findall(inner))
    return used


def as_rules_file(exprs: list[str]) -> str:
    """``exprs`` as recording rules, so ``promtool check rules`` parses them; Grafana's variables are
    replaced by values of the same syntactic kind first."""
    rules = [
        {
            "record": f"switchyard:dashboard_query_{i}",
            "expr": e.replace("$__rate_interval", "5m").replace("$domain", "phoenix"),
        }
        for i, e in enumerate(exprs)
    ]
    return yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False)
