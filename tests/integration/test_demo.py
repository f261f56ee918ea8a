"""README's first command: ``switchyard demo --once`` publishes every domain's seed samples through a real worker
and exits 0 with a summary; ``switchyard --help`` lists every command."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.core.catalog import load_catalog
from app.core.paths import ROOT
from app.settings import Settings
from tests.worker import Deployment

pytestmark = pytest.mark.integration

COMMANDS = ("worker", "demo", "topics", "check", "produce", "dlq", "crm-reference", "asyncapi", "bench")


def test_demo_once_runs_every_domain_and_exits_0(kafka_bootstrap: str, tmp_path: Path) -> None:
    d = Deployment(kafka_bootstrap, f"demo{uuid.uuid4().hex[:8]}", tmp_path)
    done = d.cli("demo", "--once", check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    rows = {
        m.group(1): [int(n) for n in m.group(2, 3, 4, 5)]
        for m in re.finditer(r"^  (\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s", out, re.MULTILINE)
    }
    domains = set(load_catalog(Settings().catalog_file).domains)
    assert set(rows) == domains, out
    for domain, (sent, seen, accepted, dead) in rows.items():
        # every sample is consumed; the one broken record per domain is dead-lettered, the samples accepted
        assert seen == sent and dead == 1 and accepted == sent - 1, (domain, out)
    assert "Where to look" in out and f"{d.topic('')}" in out
    assert (tmp_path / "demo" / "worker.log").exists()  # beside the data dir, not in the checkout


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, check=True, cwd=ROOT, timeout=60
    )
    listed = set(re.findall(r"^  ([\w-]+)", done.stdout.decode(), re.MULTILINE))
    assert set(COMMANDS) <= listed
