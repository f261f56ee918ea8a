"""A domain bug that surfaces after the pure functions returned (an output or a table state no JSON encoder
writes) must dead-letter that one record as ``INTERNAL-ERROR`` and let the stream go on, on the at-least-once
path and on the exactly-once one; so must an output bigger than the producer would send (``OUTPUT-TOO-LARGE``),
which used to fail the whole batch at the producer; so must a raw record so big that its dead letter (the record
plus the error headers) would be over that limit: the dead letter leaves its value out. Before the runtime
encoded inside its error handling, the first stopped the agent and the second aborted and retried the same
transaction forever, so nothing behind the bad record moved.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core import deadletter as dl
from tests.worker import Deployment, produce, read_all, wait_until

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent / "poisondomain"


@pytest.fixture(params=["plain", "eos"])
def deployment(request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path: Path) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        f"poison{request.param}{uuid.uuid4().hex[:8]}",
        tmp_path,
        SWITCHYARD_CATALOG_FILE=str(HERE / f"catalog-{request.param}.yaml"),
        SWITCHYARD_CRM_ENABLED="false",
        SWITCHYARD_TOPIC_PARTITIONS="1",
    )
    d.cli("topics", "create")
    yield d
    d.stop_all()


def thing(i: int, poison: str | None = None) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    return f"t{i}".encode(), json.dumps({"id": f"t{i}", "poison": poison}).encode(), []


#: A record the broker takes (its limit is 1,048,588 bytes) that is just under the worker's record limit of
#: 1,000,000 alone and over it with the error headers of a dead letter. Rejected: ``pad`` is no field of a thing.
HUGE = json.dumps({"id": "t10", "pad": "y" * 999_700}).encode()


def test_an_unencodable_output_or_state_is_dead_lettered_and_the_stream_goes_on(
    deployment: Deployment,
) -> None:
    w = deployment.worker().start()
    records = [
        thing(0),
        thing(1, "route"),
        thing(2),
        thing(3, "fold"),
        thing(4),
        thing(5, "big"),
        (b"t10", HUGE, []),
        *(thing(i) for i in range(6, 10)),
    ]
    produce(deployment.settings, "poisondomain.raw", records)

    good = {f"t{i}" for i in range(10)} - {"t1", "t5"}
    out = wait_until(
        lambda: (
            (got := {json.loads(r.value)["id"] for r in read_all(deployment.settings, "poisondomain.out")})
            >= good
            and got
        ),
        timeout=60,
        what="every good record's output, behind the poisoned ones",
    )
    assert out == good
    snapshots = wait_until(
        lambda: (
            (s := {r.key.decode() for r in read_all(deployment.settings, "poisondomain.snapshot")})
            >= good - {"t3"}
            and s
        ),
        timeout=60,
        what="every good record's snapshot",
    )
    assert "t3" not in snapshots
    dead = wait_until(
        lambda: len(d := read_all(deployment.settings, "poisondomain.deadletter")) >= 4 and d,
        timeout=30,
        what="the four poisoned records dead-lettered",
    )
    assert sorted((r.key, dict(r.headers)[dl.CODE]) for r in dead) == [
        (b"t1", b"INTERNAL-ERROR"),
        (b"t10", b"SCHEMA-ADDITIONAL-PROPERTY"),
        (b"t3", b"INTERNAL-ERROR"),
        (b"t5", b"OUTPUT-TOO-LARGE"),
    ]
    (huge,) = (r for r in dead if r.key == b"t10")
    assert huge.value is None
    assert dict(huge.headers)[dl.OMITTED] == f"value:{len(HUGE)}".encode()
    assert dict(huge.headers)[dl.SOURCE_OFFSET] == b"6"  # where the whole record still is
    assert all(r.value is not None and dl.OMITTED not in dict(r.headers) for r in dead if r is not huge)
    assert w.proc is not None and w.proc.poll() is None
