"""Security on a real broker: SASL/SCRAM to Kafka from settings, bearer tokens on queries, and no secret in the
worker's log or /metrics.

The broker is the session's SCRAM broker (``scram_broker``): its SASL_PLAINTEXT listener accepts only the users
created when its storage was formatted, so a worker that processes a record there really authenticated.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.broker import EmbeddedBroker
from tests.conftest import SCRAM_USERS
from tests.worker import Deployment, produce, read_all, wait_until

pytestmark = pytest.mark.integration

CATALOG = str(Path(__file__).parents[1] / "integration" / "testdomain" / "catalog.yaml")
USER = "switchyard"
API_TOKEN = "api-token-7f3a9c1e5b"
WEBHOOK_SECRET = "webhook-secret-2d8e6b4a0c"
CRM_TOKEN = "crm-token-9b1f7d3e5a"


def scram_deployment(broker: EmbeddedBroker, tmp: Path, name: str, password: str, **env: str) -> Deployment:
    assert broker.sasl_bootstrap is not None
    return Deployment(
        broker.sasl_bootstrap,
        name,
        tmp,
        SWITCHYARD_CATALOG_FILE=CATALOG,
        SWITCHYARD_CRM_ENABLED="false",  # the test-only catalog has no crm.commands topic
        SWITCHYARD_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        SWITCHYARD_SASL_MECHANISM="SCRAM-SHA-512",
        SWITCHYARD_SASL_USERNAME=USER,
        SWITCHYARD_SASL_PASSWORD=password,
        **env,
    )


@pytest.fixture
def secured(scram_broker: EmbeddedBroker, tmp_path: Path, unique_name: Any) -> Iterator[Deployment]:
    d = scram_deployment(
        scram_broker,
        tmp_path,
        unique_name("sec").replace(".", "-"),
        SCRAM_USERS[USER],
        SWITCHYARD_API_TOKEN=API_TOKEN,
        SWITCHYARD_WEBHOOK_SECRET=WEBHOOK_SECRET,
        SWITCHYARD_CRM_TOKEN=CRM_TOKEN,
        SWITCHYARD_LOG_LEVEL="DEBUG",
    )
    d.cli("topics", "create")
    try:
        yield d
    finally:
        d.stop_all()


def test_a_scram_worker_processes_records_guards_queries_and_leaks_no_secret(secured: Deployment) -> None:
    w = secured.worker().start()
    s = secured.settings
    produce(s, "testdomain.raw", [(b"k1", b'{"id": "k1", "n": 5}', [])])
    out = wait_until(lambda: read_all(s, "testdomain.out"), what="the record's output over SASL/SCRAM")
    assert [json.loads(r.value) for r in out] == [{"id": "k1", "n": 5}]

    wait_until(lambda: w.get("/api/testdomain/k1", headers=auth(API_TOKEN)).status_code == 200, what="row")
    assert w.get("/api/testdomain/k1", headers=auth(API_TOKEN)).json() == {"total": 5}
    for headers in ({}, auth("wrong"), {"Authorization": API_TOKEN}):
        refused = w.get("/api/testdomain/k1", headers=headers)
        assert refused.status_code == 401
        assert API_TOKEN not in refused.text
    assert w.get("/health/live").status_code == 200
    assert w.get("/health/ready").status_code == 200
    metrics = w.get("/metrics")
    assert metrics.status_code == 200 and "switchyard_events_in_total" in metrics.text

    w.stop()  # the whole life of the worker, shutdown included, is in the log
    log = w.log.read_text(errors="replace")
    assert "DEBUG" in log  # the most talkative level was on
    for secret in (SCRAM_USERS[USER], API_TOKEN, WEBHOOK_SECRET, CRM_TOKEN):
        assert secret not in log
        assert secret not in metrics.text


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_wrong_password_stops_the_worker_with_the_reason(
    scram_broker: EmbeddedBroker, tmp_path: Path, unique_name: Any
) -> None:
    wrong = "not-the-password-4c2e"
    d = scram_deployment(scram_broker, tmp_path, unique_name("sec").replace(".", "-"), wrong)
    topics = d.cli("topics", "create", check=False)
    assert topics.returncode != 0
    assert b"Authentication failed" in topics.stderr
    w = d.worker()
    try:
        with pytest.raises(RuntimeError, match="worker exited"):
            w.start(ready_timeout=60)
    finally:
        w.kill()
    log = w.log.read_text(errors="replace")
    assert "SaslAuthenticationFailed" in log and "invalid credentials" in log
    assert wrong not in log
