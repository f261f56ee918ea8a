"""Session-wide fixtures: one real Kafka broker for the whole run, and unique names so tests never share state.

The broker is started at most once per session and only when a test asks for it, so unit and contract runs
never pay for a JVM. ``SWITCHYARD_BROKER=host:port`` points the suite at an existing broker instead;
``SWITCHYARD_TEST_BROKER`` picks who provides it otherwise: ``embedded`` (default, a JVM on this machine) or
``docker`` (the locally built Kafka image through testcontainers, tests/containers/broker.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from app.broker import EmbeddedBroker
from tests.faust_run import FaustRun
from tests.worker import WORKER_LOGS, notable_lines

# authlib (under confluent-kafka, under quixstreams: the bench's peer) adds an "always" filter for its own
# DeprecationWarning when first imported, which would outrank pyproject's filterwarnings if that happened inside a
# test. Imported here, before pytest applies those filters around each test, the filter naming authlib wins.
with contextlib.suppress(ImportError):
    import authlib.deprecate  # noqa: F401

BROKER_ENV = "SWITCHYARD_BROKER"
PROVIDER_ENV = "SWITCHYARD_TEST_BROKER"
PROVIDERS = ("embedded", "docker")
SCRAM_USERS = {"switchyard": "switchyard-secret", "reader": "reader-secret"}

_started: list[EmbeddedBroker] = []


@contextlib.contextmanager
def running(broker: EmbeddedBroker) -> Iterator[EmbeddedBroker]:
    """``broker`` started for the block and stopped after it; a failed session prints its log path."""
    _started.append(broker)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of the session's broker: ``$SWITCHYARD_BROKER``, else a KRaft broker from the provider
    ``$SWITCHYARD_TEST_BROKER`` names (embedded JVM by default, or a container)."""
    external = os.environ.get(BROKER_ENV, "").strip()
    if external:
        yield external
        return
    provider = os.environ.get(PROVIDER_ENV, "").strip() or "embedded"
    if provider not in PROVIDERS:
        raise pytest.UsageError(f"{PROVIDER_ENV}={provider!r}: one of {', '.join(PROVIDERS)}")
    if provider == "docker":
        from tests.containers.broker import container_broker

        with container_broker() as bootstrap:
            yield bootstrap
        return
    data_dir = tmp_path_factory.mktemp("kafka")
    with running(EmbeddedBroker(data_dir=data_dir, log_file=data_dir / "kafka.log")) as broker:
        yield broker.bootstrap


@pytest.fixture(scope="session")
def scram_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A second embedded broker with a SASL/SCRAM listener (users in ``SCRAM_USERS``), started on first use.

    Separate from ``kafka_bootstrap`` so the common broker stays plain and fast; it is embedded even when
    ``SWITCHYARD_BROKER`` is set, because the users have to exist on it.
    """
    data_dir = tmp_path_factory.mktemp("kafka-scram")
    with running(
        EmbeddedBroker(data_dir=data_dir, log_file=data_dir / "kafka.log", scram_users=SCRAM_USERS)
    ) as broker:
        yield broker


@pytest.fixture
def faust_runs() -> Iterator[list[FaustRun]]:
    """Plain Faust workers a test started (:class:`tests.faust_run.FaustRun`), stopped after it."""
    runs: list[FaustRun] = []
    yield runs
    for run in runs:
        run.stop()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Factory of topic / group / transactional-id names unique to this test and call, valid for Kafka.

    Tests share one broker for the whole session, so a name reused across tests (or reruns against an external
    broker) would read another test's records.
    """
    slug = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")[:60]

    def make(prefix: str = "t") -> str:
        return f"{prefix}.{slug}.{uuid.uuid4().hex[:10]}"

    return make


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int) -> None:
    """On failure, say where the broker's log is: broker-side reasons (fencing, a full disk) show only there."""
    if exitstatus == 0 or not _started:
        return
    for broker in _started:
        log: Path = broker.log_file
        terminalreporter.write_line(f"embedded Kafka {broker.version} log: {log}")


_first_log = pytest.StashKey[int]()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    item.stash[_first_log] = len(WORKER_LOGS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries the notable lines of every worker it started (fixtures included): CI keeps
    only the test output, and a worker's own log is the one place a rebalance or a fenced producer shows."""
    report = yield
    if report.failed and call.when in ("call", "teardown"):
        for log in WORKER_LOGS[item.stash.get(_first_log, len(WORKER_LOGS)) :]:
            report.sections.append((f"worker log {log.name} ({log})", notable_lines(log)))
    return report
