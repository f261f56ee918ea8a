"""``bench/results/reliability.json``: what each reliability scenario sent, processed, lost, duplicated,
dead-lettered and how often a worker crashed, merged scenario by scenario so a partial run still reports what ran.

Figures are recorded before a scenario's assertions run: a failing scenario's numbers are the ones worth reading.
"""

from __future__ import annotations

import fcntl
import json
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.paths import ROOT

RESULTS = ROOT / "bench" / "results" / "reliability.json"


def record_scenario(scenario: str, part: str, **figures: Any) -> None:
    """Store ``figures`` under ``scenarios[scenario][part]`` (e.g. a domain, or "total")."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with (Path(tempfile.gettempdir()) / "switchyard-reliability.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data: dict[str, Any] = json.loads(RESULTS.read_text())
        except (OSError, ValueError):
            data = {}
        data["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        data["machine"] = {"python": platform.python_version(), "cpus": _cpus()}
        data.setdefault("scenarios", {}).setdefault(scenario, {})[part] = figures
        RESULTS.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
