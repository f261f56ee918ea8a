"""The Prometheus configuration and alert rules, checked and unit-tested by promtool itself.

promtool is the only judge of PromQL that matters (the one Prometheus runs), so the rules are not re-parsed
here: ``promtool check`` validates them and ``promtool test rules`` runs alerts_test.yml, where every alert has
a case that fires and a look-alike that must not.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from app.paths import ROOT

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"


def run(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120, check=False
    )


def test_config_and_its_rule_files_are_valid(promtool: str) -> None:
    done = run(promtool, "check", "config", "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_are_valid(promtool: str) -> None:
    done = run(promtool, "check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_unit_tests_pass(promtool: str) -> None:
    done = run(promtool, "test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def alert_names(path: Path) -> set[str]:
    doc = yaml.safe_load(path.read_text())
    return {rule["alert"] for group in doc["groups"] for rule in group["rules"] if "alert" in rule}


def test_every_alert_has_a_firing_unit_test() -> None:
    tests = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text())
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alert_names(PROMETHEUS_DIR / "alerts.yml") - fired == set()


def test_the_alerts_the_brief_asks_for_exist() -> None:
    assert {
        "SwitchyardConsumerLagGrowing",
        "SwitchyardDeadLetterRate",
        "SwitchyardCrmBreakerOpen",
        "SwitchyardCrmRateLimited",
        "SwitchyardDomainSilent",
        "SwitchyardWorkerNotReady",
        "SwitchyardTransactionAborts",
    } <= alert_names(PROMETHEUS_DIR / "alerts.yml")


def test_every_alert_says_how_bad_and_what_to_do() -> None:
    doc = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
