"""README's first command: ``switchyard demo --once`` publishes every domain's seed samples through a real worker
and exits 0 with a summary; ``switchyard --help`` lists every command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from app.core.catalog import load_catalog
from app.core.records import load_samples
from app.paths import ROOT
from app.settings import Settings
from app.sinks.crm.reference import CrmStore
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

    # CRM outcomes per domain: every seed command applied, none dead-lettered, none waiting
    crm = {
        m.group(1): (int(m.group(2)), int(m.group(3)), m.group(4))
        for m in re.finditer(
            r"^  (\w+)\s+(\d+)\s+(\d+)  (.+)$", out.split("CRM commands", 1)[1], re.MULTILINE
        )
    }
    assert set(crm) == {"vome", "appointments"}, out
    for domain, (applied, waiting, refused) in crm.items():
        assert applied > 0 and waiting == 0 and refused == "0", (domain, out)

    # Every Vome booking sample that was not deleted is a meeting on its volunteer's contact in the CRM.
    state = CrmStore(str(tmp_path / "demo" / "crm.sqlite3")).state()
    contact_of = {c["id"]: c["properties"].get("vome_user_id") for c in state["contacts"]}
    meetings = {m["properties"]["switchyard_activity_id"]: m for m in state["meetings"]}
    bookings = {
        (doc["id"], doc["user"]["id"]): s.event_type
        for s in load_samples("vome")
        if (s.event_type or "").startswith("booking.")
        for doc in [json.loads(s.value)]
    }
    deleted = {b for (b, _), t in bookings.items() if t == "booking.deleted"}
    live = {(b, u) for (b, u) in bookings if b not in deleted}
    assert live, "no booking sample to check"
    for booking, user in live:
        assert booking in meetings, (booking, state)
        assert [contact_of[c] for c in meetings[booking]["contacts"]] == [user]
    assert not deleted & set(meetings)


def test_help_lists_every_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, check=True, cwd=ROOT, timeout=60
    )
    listed = set(re.findall(r"^  ([\w-]+)", done.stdout.decode(), re.MULTILINE))
    assert set(COMMANDS) <= listed
