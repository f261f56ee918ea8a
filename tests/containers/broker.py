"""The test session's broker in a container: ``SWITCHYARD_TEST_BROKER=docker`` (tests/conftest.py).

The locally built Kafka image (``deploy/kafka/Dockerfile``, built on demand by :mod:`tests.containers.images`)
started through ``testcontainers`` with host networking on free loopback ports, like the embedded broker, so
clients see the same ``127.0.0.1:<port>`` either way. Readiness is the image's own HEALTHCHECK (the broker
answers a Kafka request), waited for with testcontainers' healthcheck strategy.

Ryuk, testcontainers' reaper, is an image from Docker Hub and cannot be pulled here; it is turned off and the
fixture removes the container itself (also at interpreter exit, for a session that dies on an exception).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import pytest

from app.broker import free_ports
from tests.containers.images import ImageError, MissingTool, docker_answers, image

STARTUP_TIMEOUT_S = 120


def skip_or_fail(reason: str) -> NoReturn:
    """Skip with ``reason`` on a developer machine; in CI (``CI=true``, as .ci/run sets) fail instead, since
    .ci/run installs and starts everything the container tests need."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the container tests, but {reason}")
    pytest.skip(reason)


def docker_or_skip() -> None:
    """Return when a Docker engine answers, else :func:`skip_or_fail` with the reason."""
    reason = docker_answers()
    if reason is not None:
        skip_or_fail(reason)


@contextlib.contextmanager
def container_broker() -> Iterator[str]:
    """A running Kafka container's bootstrap address for the block; the container is removed after it."""
    docker_or_skip()
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import HealthcheckWaitStrategy

    testcontainers_config.ryuk_disabled = True
    try:
        kafka = image("kafka")
    except MissingTool as exc:
        skip_or_fail(str(exc))
    except ImageError as exc:
        pytest.fail(f"the Kafka image could not be built: {exc}")
    port, controller = free_ports(2)
    container = (
        DockerContainer(kafka.tag)
        .with_name(f"switchyard-test-kafka-{uuid.uuid4().hex[:8]}")
        .with_kwargs(network_mode="host")
        .with_env("KAFKA_LISTENERS", f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", f"1@127.0.0.1:{controller}")
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        .with_env("KAFKA_NUM_PARTITIONS", "6")
        # As the embedded broker: 12 partitions, not 50, for the internal topics a small machine creates.
        .with_env("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "12")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_NUM_PARTITIONS", "12")
        .waiting_for(HealthcheckWaitStrategy().with_startup_timeout(STARTUP_TIMEOUT_S))
    )
    atexit.register(container.stop)
    try:
        container.start()
        yield f"127.0.0.1:{port}"
    finally:
        container.stop()
        atexit.unregister(container.stop)
