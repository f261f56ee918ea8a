"""The issue's goals checked against a result, and the human-readable table of ``switchyard bench``."""

from __future__ import annotations

from typing import Any

#: issue 20's goals, each per domain where it says "every domain"
CPU_GOAL_US = 500.0  # worker CPU per event, at most
PLAIN_GOAL = 0.8  # C/B: the worker against a plain aiokafka loop calling the same functions
PEER_GOAL = 1.0  # C/Q: the worker against Quix Streams doing the same work
P99_GOAL_MS = 100.0  # at 50 % of the drain rate, at-least-once domains
P99_EOS_GOAL_MS = 250.0  # the same on the exactly-once path (domains the catalog marks exactly_once)
RECOVERY_GOAL_S = 5.0  # 100k keys
RSS_GOAL_MB = 200.0  # worker peak RSS
#: kept from the CRM issue: the sink's batching and its use of the rate budget
CRM_CONTACTS_GOAL = 50.0
CRM_BUDGET_GOAL = 0.95


def _goal(
    name: str, value: float | None, target: float, higher_is_better: bool, inclusive: bool = False
) -> dict[str, Any]:
    """``met`` by ``value >= target`` (higher is better) or ``value < target`` (``<=`` when ``inclusive``)."""
    if value is None:
        return {"goal": name, "target": target, "value": None, "met": None, "by": None}
    met = value >= target if higher_is_better else (value <= target if inclusive else value < target)
    return {
        "goal": name,
        "target": target,
        "value": value,
        "met": met,
        # how far from the target, as a share of it: positive = margin, negative = shortfall
        "by": round((value - target) / target if higher_is_better else (target - value) / target, 3),
    }


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal of issue 20 (and the CRM's), met, missed, or ``None`` where the run did not measure it."""
    out = []
    scenarios = result["scenarios"]
    for name, s in scenarios.items():
        out.append(
            _goal(
                f"{name} worker CPU <= {CPU_GOAL_US:g} us/event",
                s.get("cpu_us_per_event"),
                CPU_GOAL_US,
                False,
                inclusive=True,
            )
        )
        out.append(_goal(f"{name} C/B >= {PLAIN_GOAL:g}", s.get("ratio_plain"), PLAIN_GOAL, True))
        out.append(_goal(f"{name} C/Q >= {PEER_GOAL:g}", s.get("ratio_peer"), PEER_GOAL, True))
    for name, s in scenarios.items():
        target = P99_EOS_GOAL_MS if s.get("exactly_once") else P99_GOAL_MS
        out.append(_goal(f"{name} p99 at 50% load < {target:g} ms", s.get("p99_ms"), target, False))
    rec = result.get("recovery", {})
    out.append(
        _goal(f"100k-key recovery < {RECOVERY_GOAL_S:g} s", rec.get("rebuild_s"), RECOVERY_GOAL_S, False)
    )
    rss = [s["rss_mb"] for s in scenarios.values() if s.get("rss_mb") is not None]
    out.append(_goal(f"worker RSS < {RSS_GOAL_MB:g} MB", max(rss) if rss else None, RSS_GOAL_MB, False))
    crm = result.get("crm", {})
    out.append(
        _goal(
            f"CRM contacts/call >= {CRM_CONTACTS_GOAL:g}",
            crm.get("contacts_per_call"),
            CRM_CONTACTS_GOAL,
            True,
        )
    )
    out.append(
        _goal(f"CRM budget used >= {CRM_BUDGET_GOAL:.0%}", crm.get("budget_used"), CRM_BUDGET_GOAL, True)
    )
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def render_table(result: dict[str, Any]) -> str:
    cols = (
        "passthrough_eps",
        "plain_eps",
        "pipeline_eps",
        "peer_eps",
        "ratio_plain",
        "ratio_passthrough",
        "ratio_peer",
        "cpu_us_per_event",
        "peer_cpu_us_per_event",
        "ratio_peer_cpu",
        "p50_ms",
        "p99_ms",
        "rss_mb",
    )
    lines = ["| scenario | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, s in result["scenarios"].items():
        lines.append(f"| {name} | " + " | ".join(_fmt(s.get(c)) for c in cols) + " |")
    lines.append("")
    lines.append("| goal | value | met | by |")
    lines.append("|---|---|---|---|")
    for g in result["goals"]:
        met = {True: "yes", False: "NO", None: "n/a"}[g["met"]]
        by = "-" if g["by"] is None else f"{g['by']:+.0%}"
        lines.append(f"| {g['goal']} | {_fmt(g['value'])} | {met} | {by} |")
    mem = result.get("table_memory")
    if mem:
        lines.append("")
        lines.append(
            f"table memory ({mem['stores']} RocksDB stores): Faust's defaults {_fmt(mem['faust_end_mb'])} MB,"
            f" shared {mem['budget_mb']} MB budget {_fmt(mem['shared_end_mb'])} MB at the end;"
            f" growth over the second half {_fmt(mem['faust_growth_second_half_mb'])} vs"
            f" {_fmt(mem['shared_growth_second_half_mb'])} MB"
        )
    return "\n".join(lines)
