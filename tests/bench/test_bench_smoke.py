"""The benchmark's building blocks on a tiny Vome backlog against the session broker: the result has the shape
``switchyard bench --json`` promises and every variant accounted for every record. No timing is asserted."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from app.core.errors import RecordError
from app.core.records import RawRecord
from bench.harness import FRACTIONS, Bench, Plan, write_results
from bench.report import goals, render_table
from bench.scenarios import NOW, SCENARIOS

pytestmark = pytest.mark.integration

N = 80
SCENARIO_KEYS = {
    "passthrough_eps",
    "plain_eps",
    "pipeline_eps",
    "ratio_plain",
    "ratio_passthrough",
    "cpu_us_per_event",
    "p50_ms",
    "p99_ms",
    "rss_mb",
}


@pytest.fixture(scope="module")
def vome_result(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    plan = Plan("smoke", {"vome": N}, 1, 1.0, None, 1000, 100, 20, False)
    bench = Bench(plan, kafka_bootstrap, tmp_path_factory.mktemp("bench"))
    import asyncio

    return asyncio.run(bench.scenario(SCENARIOS["vome"], "smoke"))


def test_every_variant_consumed_the_whole_backlog(vome_result: dict) -> None:
    (only,) = vome_result["rounds"]
    assert only["passthrough_records"] == N
    assert only["plain_records"] == N
    assert vome_result["pipeline_eps"] > 0
    assert vome_result["records"] == N


def test_plain_outputs_add_up_to_what_the_rules_say(vome_result: dict) -> None:
    """Recomputed without Kafka: a dead letter per rejected record, the routed emits of each distinct event."""
    scenario = SCENARIOS["vome"]
    expected: Counter[str] = Counter()
    seen: set[str] = set()
    for key, value, headers in scenario.generate(random.Random(20250602), N):
        try:
            processed = scenario.rules.process(RawRecord(value=value, key=key, headers=headers), NOW)
        except RecordError:
            expected["vome.deadletter"] += 1
            continue
        if processed.event_id not in seen:
            seen.add(processed.event_id)
            expected.update(e.topic for e in scenario.rules.route(processed, NOW))
    outputs = vome_result["rounds"][0]["plain_outputs"]
    assert 0 < expected["vome.deadletter"] < N
    assert {t: outputs.get(t, 0) for t in expected} == dict(expected)
    assert 0 < outputs["vome.volunteers"] <= expected["vome.volunteers.feed"]


def test_latency_steps_see_every_record_they_sent(vome_result: dict) -> None:
    steps = vome_result["latency"]["steps"]
    assert [s["fraction"] for s in steps] == list(FRACTIONS)
    for s in steps:
        assert s["sent"] > 0
        assert s["seen"] == s["sent"]
        assert s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]


def test_result_has_the_promised_shape_and_is_written(vome_result: dict, tmp_path: Path, monkeypatch) -> None:
    assert vome_result.keys() >= SCENARIO_KEYS
    result = {
        "mode": "smoke",
        "started_at": "now",
        "machine": {},
        "scenarios": {"vome": vome_result},
        "crm": {"contacts_per_call": None, "budget_used": None},
        "recovery": {},
        "scaling": {},
    }
    result["goals"] = goals(result)
    assert any(
        g["goal"].startswith("vome p99") and g["value"] == vome_result["p99_ms"] for g in result["goals"]
    )
    assert "| vome |" in render_table(result)
    monkeypatch.setattr("bench.harness.RESULTS", tmp_path)
    written = write_results(result, "smoke")
    names = {p.name for p in written}
    assert {"smoke-vome-smoke.json", "smoke-crm-smoke.json", "smoke-summary-smoke.json"} <= names
    assert (
        orjson.loads((tmp_path / "smoke-summary-smoke.json").read_bytes())["scenarios"]["vome"]["records"]
        == N
    )
