"""Shared by the deployment-file tests: which ``SWITCHYARD_*`` names app/settings.py reads, and the health
paths the worker serves."""

from __future__ import annotations

import re

from app.paths import ROOT
from app.settings import Settings

HEALTH_LIVE = "/health/live"
HEALTH_READY = "/health/ready"
METRICS = "/metrics"


def settings_env_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def served_paths() -> set[str]:
    """Paths app/core/runtime/web.py registers, read from its source so a renamed endpoint fails these tests."""
    source = (ROOT / "app" / "core" / "runtime" / "web.py").read_text()
    return set(re.findall(r'@app\.page\("([^"]+)"\)', source))
