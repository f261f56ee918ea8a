"""Fixtures of the reliability suite: a deployment running every domain, isolated like the integration tests'."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.load import FAST_FAILOVER
from tests.worker import Deployment


@pytest.fixture
def deploy(tmp_path: Path) -> Iterator[Callable[..., Deployment]]:
    """``deploy(bootstrap, **env)``: a deployment of all five domains (CRM sink off unless ``env`` turns it on),
    its topics created; every worker it started is stopped afterwards."""
    made: list[Deployment] = []

    def make(bootstrap: str, **env: str) -> Deployment:
        d = Deployment(
            bootstrap,
            f"rel{uuid.uuid4().hex[:10]}",
            tmp_path / f"d{len(made)}",
            **{"SWITCHYARD_TOPIC_PARTITIONS": "3", "SWITCHYARD_CRM_ENABLED": "false", **FAST_FAILOVER, **env},
        )
        d.tmp.mkdir(parents=True, exist_ok=True)
        made.append(d)
        d.cli("topics", "create")
        return d

    yield make
    for d in made:
        d.stop_all()
