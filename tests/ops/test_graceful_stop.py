"""SIGTERM mid-backlog: the worker stops fetching, commits what it finished, leaves the group and exits in time.

Kubernetes sends SIGTERM and kills the pod ``terminationGracePeriodSeconds`` (30 s by default) later; a worker that
is still closing then loses its clean group leave and the next owner waits out the session timeout. The worker
gets every domain and a Phoenix backlog, is stopped while it drains, and must exit 0 within 10 s having left the group;
a second worker then finishes the backlog, and every record's output is there (nothing lost at the stop).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from app.core.errors import RecordError
from app.core.records import RawRecord
from app.domains.phoenix.generate import GeneratedRecord, session_stream
from app.domains.phoenix.rules import ENRICHED_TOPIC, RULES
from tests.worker import Deployment, produce, read_all, wait_until

pytestmark = pytest.mark.integration

GRACE_SECONDS = 10.0
NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, unique_name: Any) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap, unique_name("stop").replace(".", "-"), tmp_path, SWITCHYARD_CRM_ENABLED="false"
    )
    d.cli("topics", "create")
    try:
        yield d
    finally:
        d.stop_all()


def expected_sessions(records: list[GeneratedRecord]) -> set[str]:
    """Event ids that must reach ``phoenix.sessions.enriched``, from the domain's own pure functions."""
    ids: set[str] = set()
    for r in records:
        try:
            processed = RULES.process(RawRecord(r.value, r.key, (), "phoenix.raw"), NOW)
        except RecordError:
            continue
        if any(e.topic == ENRICHED_TOPIC for e in RULES.route(processed, NOW)):
            ids.add(processed.event_id)
    return ids


def test_sigterm_mid_backlog_exits_promptly_and_loses_nothing(deployment: Deployment) -> None:
    d = deployment
    s = d.settings
    records = session_stream(random.Random(20), sessions=3000)
    want = expected_sessions(records)
    produce(s, "phoenix.raw", [(r.key, r.value, []) for r in records])
    first = d.worker().start()
    wait_until(
        lambda: first.metric("switchyard_events_in_total", domain="phoenix") > 0, what="the drain to start"
    )
    assert first.proc is not None
    started = time.monotonic()
    first.proc.terminate()
    code = first.proc.wait(timeout=60)
    took = time.monotonic() - started
    assert code == 0, first.tail()
    assert took <= GRACE_SECONDS, f"SIGTERM to exit took {took:.1f}s:\n{first.tail()}"
    assert "LeaveGroup request succeeded" in first.log.read_text(errors="replace")
    # A successor drains the rest from what the first committed: every session is there, none lost at the stop.
    d.worker().start()

    def sessions_out() -> set[str]:
        return {str(orjson.loads(x.value)["eventId"]) for x in read_all(s, ENRICHED_TOPIC)}

    missing: set[str] = set()

    def all_there() -> bool:
        missing.clear()
        missing.update(want - sessions_out())
        return not missing

    try:
        wait_until(all_there, timeout=180, interval=2, what="every session's enriched output")
    except TimeoutError as exc:
        raise AssertionError(
            f"{len(missing)} of {len(want)} sessions missing, e.g. {sorted(missing)[:5]}"
        ) from exc
