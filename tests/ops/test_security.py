"""Security on a real broker: SASL/SCRAM and TLS to Kafka from settings, bearer tokens on queries, and no secret
in the worker's log or /metrics.

The SCRAM tests use the session's SCRAM broker (``scram_broker``): its SASL_PLAINTEXT listener accepts only the
users created when its storage was formatted, so a worker that processes a record there really authenticated.

The TLS tests start one broker of their own (``tls_broker``) with a throwaway PKI (``tests/tls.py``): an SSL
listener that requires a client certificate, and a SASL_SSL listener (SCRAM over TLS). Clients are built from
``Settings`` by the project's own ``kafka_client_options``, so what is tested is the settings-to-TLS path a
production deployment uses, not a hand-made ``SSLContext``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaConnectionError

from app.broker import BrokerTls, EmbeddedBroker
from app.core.admin import admin_client
from app.core.kafka import producer
from app.settings import Settings
from tests.conftest import SCRAM_USERS, running
from tests.tls import Pki, make_pki
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


# --- TLS -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[EmbeddedBroker]:
    """A broker with an SSL listener demanding a client certificate and a SASL_SSL listener, for this module
    only: the session's brokers stay plain, and only a run that asks for TLS pays for this start."""
    data_dir = tmp_path_factory.mktemp("kafka-tls")
    broker = EmbeddedBroker(
        data_dir=data_dir,
        log_file=data_dir / "kafka.log",
        scram_users=SCRAM_USERS,
        tls=BrokerTls(certfile=pki.broker_cert, keyfile=pki.broker_key, cafile=pki.ca, client_auth=True),
    )
    with running(broker):
        yield broker


def tls_settings(bootstrap: str | None, **overrides: Any) -> Settings:
    assert bootstrap is not None
    return Settings(broker=bootstrap, security_protocol="SSL", **overrides)


def create_topic(settings: Settings, topic: str) -> None:
    async def go() -> None:
        admin = admin_client(settings)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, 1, 1)])
        finally:
            await admin.close()

    asyncio.run(go())


def connect(settings: Settings) -> None:
    """Start and stop a producer from ``settings``; raises what the client raises. Bounded, so a broker that
    swallowed the handshake fails the test in seconds instead of hanging it."""

    async def go() -> None:
        prod = producer(settings, request_timeout_ms=5000)
        try:
            await asyncio.wait_for(prod.start(), timeout=20)
        finally:
            await prod.stop()

    asyncio.run(go())


def test_a_client_with_the_ca_and_a_client_certificate_produces_and_consumes_over_mutual_tls(
    tls_broker: EmbeddedBroker, pki: Pki, unique_name: Any
) -> None:
    s = tls_settings(
        tls_broker.ssl_bootstrap,
        ssl_cafile=pki.ca,
        ssl_certfile=pki.client_cert,
        ssl_keyfile=pki.client_key,
    )
    topic = unique_name("tls")
    create_topic(s, topic)
    produce(s, topic, [(b"k1", b"over TLS", [])])
    assert [(r.key, r.value) for r in read_all(s, topic)] == [(b"k1", b"over TLS")]

    # SCRAM over TLS: the server is verified by the CA, the client by its password, no client certificate.
    assert tls_broker.sasl_ssl_bootstrap is not None
    scram = Settings(
        broker=tls_broker.sasl_ssl_bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username=USER,
        sasl_password=SCRAM_USERS[USER],
        ssl_cafile=pki.ca,
    )
    assert [(r.key, r.value) for r in read_all(scram, topic)] == [(b"k1", b"over TLS")]


def test_a_client_that_does_not_trust_the_brokers_ca_refuses_the_broker(
    tls_broker: EmbeddedBroker, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    s = tls_settings(
        tls_broker.ssl_bootstrap,
        ssl_cafile=pki.other_ca,
        ssl_certfile=pki.client_cert,
        ssl_keyfile=pki.client_key,
    )
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        connect(s)
    # aiokafka raises a generic "Unable to bootstrap"; the reason is in its log, and it is the certificate.
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


@pytest.mark.parametrize("certificate", ["none", "signed by another CA"])
def test_the_mutual_tls_listener_refuses_a_client_without_a_certificate_it_trusts(
    tls_broker: EmbeddedBroker, pki: Pki, certificate: str
) -> None:
    assert tls_broker.ssl_bootstrap is not None
    port = tls_broker.ssl_bootstrap.rsplit(":", 1)[1]

    def refusals() -> int:
        # Kafka's channel ids start with the listener's address: "channelId=127.0.0.1:<port>-<client>-..."
        lines = tls_broker.log_file.read_text(errors="replace").splitlines()
        return sum(
            "Failed authentication" in line and "SSL handshake failed" in line and f":{port}-" in line
            for line in lines
        )

    client = (
        {} if certificate == "none" else {"ssl_certfile": pki.stranger_cert, "ssl_keyfile": pki.stranger_key}
    )
    before = refusals()
    with pytest.raises(KafkaConnectionError):
        connect(tls_settings(tls_broker.ssl_bootstrap, ssl_cafile=pki.ca, **client))
    # The client only sees the connection close (in TLS 1.3 the server judges the client's certificate after
    # the client has finished its side of the handshake); the broker's log says why.
    wait_until(lambda: refusals() > before, timeout=10, what="the broker logging the refused handshake")
