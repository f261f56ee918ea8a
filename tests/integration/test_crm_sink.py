"""The CRM sink inside a real worker: crm.commands on the shared broker -> the reference CRM over HTTP.

The reference CRM runs as its own process with the real batch limit and a rate limit scaled down in time (the
same calls per window as production, a window of seconds instead of a minute).
"""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core import deadletter as dl
from app.domains.appointments.views import APPOINTMENT_PATH
from app.paths import SAMPLES_DIR
from app.sinks.crm.benchmark import TOKEN, generate_commands
from app.sinks.crm.commands import CrmCommand
from app.sinks.crm.model import expected_state, normalize_state
from app.sinks.crm.reference import SETUP_TOKEN
from app.sinks.crm.setup import setup_portal
from tests.worker import Deployment, free_port, produce, read_all, wait_until

pytestmark = pytest.mark.integration

LIMIT, WINDOW = 100, 2.0


class Crm:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [
            sys.executable,
            "-m",
            "app.sinks.crm.reference",
            "--port",
            str(self.port),
            "--db",
            str(tmp / "crm.sqlite3"),
            "--limit",
            str(LIMIT),
            "--window",
            str(WINDOW),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._up, timeout=30, what="reference CRM")
        # a portal has no custom properties until `switchyard crm setup` made them (its own token's budget)
        asyncio.run(setup_portal(self.url, SETUP_TOKEN))
        # the test's statistics start after it (a reset keeps the portal's property definitions)
        httpx.post(f"{self.url}/__admin/reset", timeout=10).raise_for_status()

    def _up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/__admin/stats", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def admin(self, path: str) -> Any:
        return httpx.get(f"{self.url}/__admin/{path}", timeout=10).json()

    def fault(self, mode: str, **spec: Any) -> None:
        httpx.post(f"{self.url}/__admin/faults", json={"mode": mode, **spec}, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[Crm]:
    server = Crm(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, crm: Crm, request: Any) -> Iterator[Deployment]:
    name = "crm" + str(abs(hash(request.node.nodeid)) % 10**8)
    d = Deployment(
        kafka_bootstrap,
        name,
        tmp_path,
        SWITCHYARD_DOMAINS="crm",
        SWITCHYARD_CRM_BASE_URL=crm.url,
        SWITCHYARD_CRM_TOKEN=TOKEN,
        SWITCHYARD_CRM_RATE_LIMIT_CALLS=str(LIMIT),
        SWITCHYARD_CRM_RATE_LIMIT_WINDOW_SECONDS=str(WINDOW),
        SWITCHYARD_SESSION_TIMEOUT_SECONDS="10",
        SWITCHYARD_HEARTBEAT_INTERVAL_SECONDS="1",
        SWITCHYARD_CRM_BACKOFF_CAP_SECONDS="2",
        SWITCHYARD_CRM_BREAKER_RESET_SECONDS="1",
    )
    d.cli("topics", "create")
    yield d
    d.stop_all()


def publish(d: Deployment, commands: list[CrmCommand]) -> None:
    produce(
        d.settings,
        "crm.commands",
        [(c.contact_id.encode(), c.model_dump_json().encode(), []) for c in commands],
    )


def converged(crm: Crm, want: dict[str, Any]) -> bool:
    return normalize_state(crm.admin("state")) == want


def test_a_backlog_lands_exactly_within_the_limit_in_few_calls(deployment: Deployment, crm: Crm) -> None:
    commands = generate_commands(5000, 500, seed=11)
    want, refused = expected_state(commands)
    publish(deployment, commands)  # a backlog before the sink starts: the batching case
    w = deployment.worker().start()
    wait_until(
        lambda: converged(crm, want), timeout=240, interval=1.0, what="CRM state equal to the commands"
    )
    stats = crm.admin("stats")
    assert stats["max_calls_in_window"] <= LIMIT
    # + 20: besides the erasures (one call each), activities for archived contacts are refused (HubSpot links
    # nothing to an archived record), so deleting their never-created meetings costs a look-up per batch
    assert stats["calls"] <= math.ceil(len(commands) / 100) + 20, stats
    assert len(read_all(deployment.settings, "crm.deadletter")) == len(refused)
    wait_until(lambda: w.metric("switchyard_crm_commands_total") >= len(commands), what="commands counted")


def test_outage_then_429s_then_recovery_loses_nothing_and_applies_nothing_twice(
    deployment: Deployment, crm: Crm
) -> None:
    commands = generate_commands(1500, 150, seed=12)
    want, _ = expected_state(commands)
    deployment.worker().start()
    publish(deployment, commands[:500])
    crm.fault("outage", seconds=4)
    publish(deployment, commands[500:1000])
    crm.fault("429", count=6, delay=0.5)
    publish(deployment, commands[1000:])
    wait_until(lambda: converged(crm, want), timeout=240, interval=1.0, what="state after the outage")
    stats = crm.admin("stats")
    assert stats["max_calls_in_window"] <= LIMIT


def test_a_sink_killed_mid_batch_and_restarted_reaches_the_same_state(
    deployment: Deployment, crm: Crm
) -> None:
    commands = generate_commands(3000, 300, seed=13)
    want, _ = expected_state(commands)
    crm.fault("slow", seconds=6, delay=0.3)  # keep batches in flight long enough to be killed inside one
    w = deployment.worker().start()
    publish(deployment, commands)
    wait_until(lambda: crm.admin("stats")["calls"] >= 3, timeout=60, what="the sink mid-way")
    w.kill()
    deployment.worker().start()
    wait_until(lambda: converged(crm, want), timeout=240, interval=1.0, what="state after the kill")


# ---- an e-mail the seed allows and the CRM cannot hold -------------------------------------------------------


def _appointment(appointment_id: str, event_id: str, **customer: Any) -> bytes:
    doc = json.loads((SAMPLES_DIR / "appointments" / "reschedule-by-customer.json").read_bytes())
    doc["id"] = event_id
    doc["data"]["appointment"]["id"] = appointment_id
    found = next(p for p in doc["data"]["appointment"]["participants"] if p["type"] == "CUSTOMER")
    found["customer"].update(customer)
    return json.dumps(doc).encode()


def test_an_appointment_whose_email_the_crm_cannot_hold_is_kept_and_only_its_commands_dead_lettered(
    kafka_bootstrap: str, tmp_path: Path, crm: Crm
) -> None:
    """Seed: e-mails up to 320 characters; CRM: ids up to 255. Both appointments reach appointments.enriched and
    the table; the one with an external id reaches the CRM under it, the one with no id that fits leaves its two
    commands on crm.deadletter (CRM-ID-TOO-LONG, no HTTP status: they never reached the CRM)."""
    d = Deployment(
        kafka_bootstrap,
        f"aptcrm{uuid.uuid4().hex[:8]}",
        tmp_path,
        SWITCHYARD_DOMAINS="appointments,crm",
        SWITCHYARD_CRM_BASE_URL=crm.url,
        SWITCHYARD_CRM_TOKEN=TOKEN,
        SWITCHYARD_CRM_RATE_LIMIT_CALLS=str(LIMIT),
        SWITCHYARD_CRM_RATE_LIMIT_WINDOW_SECONDS=str(WINDOW),
    )
    try:
        d.cli("topics", "create")
        w = d.worker().start()
        by_external = "e" * 290 + "@mail.example.org"
        nothing_fits = "n" * 300 + "@mail.example.org"
        produce(
            d.settings,
            "appointments.raw",
            [
                (b"apt-long-1", _appointment("apt-long-1", "wh-long-1", email=by_external), []),
                (
                    b"apt-long-2",
                    _appointment("apt-long-2", "wh-long-2", email=nothing_fits, externalId=None, id=None),
                    [],
                ),
            ],
        )
        dead = wait_until(
            lambda: len(recs := read_all(d.settings, "crm.deadletter")) >= 2 and recs,
            timeout=90,
            what="two CRM dead letters",
        )
        assert len(dead) == 2
        commands = [CrmCommand.model_validate_json(r.value) for r in dead]
        assert sorted(c.op for c in commands) == ["activity.upsert", "contact.upsert"]
        assert {c.contact_id for c in commands} == {nothing_fits}
        for r in dead:
            headers = dict(r.headers)
            assert headers[dl.CODE] == b"CRM-ID-TOO-LONG" and headers[dl.STAGE] == b"sink"
            assert headers[dl.SOURCE_TOPIC] == d.topic("crm.commands").encode()
            assert "switchyard.crm.status" not in headers
            assert nothing_fits.encode() not in headers[dl.MESSAGE]

        enriched = {
            json.loads(r.value)["appointment_id"] for r in read_all(d.settings, "appointments.enriched")
        }
        assert enriched == {"apt-long-1", "apt-long-2"}
        for appointment in ("apt-long-1", "apt-long-2"):
            assert w.get(APPOINTMENT_PATH.format(appointmentId=appointment)).status_code == 200

        def crm_has_the_contact_by_external_id() -> bool:
            state = normalize_state(crm.admin("state"))
            return any(
                c["properties"].get("external_id") == "CRM-CUST-55120" for c in state["contacts"]
            ) and any(m["contacts"] == [[["external_id", "CRM-CUST-55120"]]] for m in state["meetings"])

        wait_until(crm_has_the_contact_by_external_id, timeout=60, what="the contact under its external id")
        state = normalize_state(crm.admin("state"))
        assert not any(by_external in json.dumps(c) for c in state["contacts"])
    finally:
        d.stop_all()
