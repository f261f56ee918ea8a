"""The foundation on a real broker: dead letters, dedupe, topic creation, replay, all through a test-only domain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.core import deadletter as dl
from tests.kafka_helpers import Record
from tests.worker import Deployment, produce, read_all, wait_until

pytestmark = pytest.mark.integration

CATALOG = str(Path(__file__).parent / "testdomain" / "catalog.yaml")


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, request: Any) -> Any:
    name = "f" + str(abs(hash(request.node.nodeid)) % 10**8)
    d = Deployment(
        kafka_bootstrap, name, tmp_path, SWITCHYARD_CATALOG_FILE=CATALOG, SWITCHYARD_DLQ_MAX_REPLAYS="2"
    )
    d.cli("topics", "create")
    yield d
    d.stop_all()


def headers_of(rec: Any) -> dict[str, bytes]:
    return {k: v for k, v in rec.headers}


def test_bad_records_are_dead_lettered_untouched_and_the_agent_goes_on(deployment: Deployment) -> None:
    w = deployment.worker().start()
    s = deployment.settings
    bad_json = (b"k-decode", b'{"id": "x", ', [("trace", b"t-1"), ("switchyard.event-type", b"thing")])
    invalid = (b"k-validate", b'{"id": "y", "n": -5}', [("trace", b"t-2")])
    good: Record = (b"k-good", b'{"id": "z", "n": 4}', [])
    produce(s, "testdomain.raw", [bad_json, invalid, good])

    dead = wait_until(
        lambda: len(recs := read_all(s, "testdomain.deadletter")) >= 2 and recs, what="2 dead letters"
    )
    by_key = {r.key: r for r in dead}
    for key, value, headers in (bad_json, invalid):
        rec = by_key[key]
        assert rec.value == value  # bytes untouched
        assert rec.headers[: len(headers)] == tuple(headers) or list(rec.headers[: len(headers)]) == headers
    decode_h, validate_h = headers_of(by_key[b"k-decode"]), headers_of(by_key[b"k-validate"])
    assert decode_h[dl.STAGE] == b"decode" and decode_h[dl.CODE] == b"DECODE-JSON"
    assert validate_h[dl.STAGE] == b"validate" and validate_h[dl.CODE] == b"SCHEMA-MINIMUM"
    assert validate_h[dl.PATH] == b"/n"
    assert validate_h[dl.SOURCE_TOPIC] == deployment.topic("testdomain.raw").encode()
    for h in (decode_h, validate_h):
        assert set(dl.DLQ_HEADERS) <= set(h)
        assert h[dl.FAILED_AT].endswith(b"Z")

    out = wait_until(lambda: read_all(s, "testdomain.out"), what="the good record's output")
    assert [json.loads(r.value) for r in out] == [{"id": "z", "n": 4}]
    wait_until(
        lambda: w.metric("switchyard_events_rejected_total", domain="testdomain") == 2, what="rejected metric"
    )
    assert w.metric("switchyard_events_rejected_total", error_code="DECODE-JSON") == 1
    assert w.metric("switchyard_events_rejected_total", error_code="SCHEMA-MINIMUM") == 1
    assert w.metric("switchyard_deadletter_writes_total", topic="testdomain.deadletter") == 2


def test_a_redelivered_event_produces_one_output_and_one_table_change(deployment: Deployment) -> None:
    w = deployment.worker().start()
    s = deployment.settings
    rec: Record = (b"same", b'{"id": "same", "n": 7}', [])
    produce(s, "testdomain.raw", [rec, rec, rec])
    wait_until(
        lambda: w.metric("switchyard_dedupe_hits_total", domain="testdomain") == 2, what="two dedupe hits"
    )
    assert len(read_all(s, "testdomain.out")) == 1
    assert wait_until(lambda: w.get("/api/testdomain/same").status_code == 200, what="table row")
    assert w.get("/api/testdomain/same").json() == {"total": 7}
    assert w.get("/api/testdomain/unknown").status_code == 404


def test_topics_create_is_idempotent(deployment: Deployment) -> None:
    again = json.loads(deployment.cli("topics", "create").stdout)
    assert again["created"] == []
    assert sorted(again["existing"]) == sorted(
        [
            "testdomain.raw",
            "testdomain.out",
            "testdomain.feed",
            "testdomain.snapshot",
            "testdomain.deadletter",
        ]
    )
    assert again["drift"] == []


def test_replay_moves_dead_letters_back_and_the_counter_stops_a_loop(deployment: Deployment) -> None:
    w = deployment.worker().start()
    s = deployment.settings
    produce(s, "testdomain.raw", [(b"loop", b'{"id": "loop", "n": -1}', [("trace", b"keep-me")])])
    wait_until(lambda: len(read_all(s, "testdomain.deadletter")) == 1, what="first dead letter")

    dry = json.loads(deployment.cli("dlq", "replay", "--dry-run").stdout)
    assert dry["replayed"] == 1
    assert len(read_all(s, "testdomain.raw")) == 1  # dry run sent nothing

    for round_ in (1, 2):
        summary = json.loads(deployment.cli("dlq", "replay").stdout)
        assert summary["replayed"] == 1, summary
        wait_until(
            lambda n=round_: len(read_all(s, "testdomain.deadletter")) == 1 + n, what=f"dead letter {round_}"
        )
    raw = read_all(s, "testdomain.raw")
    assert [r.value for r in raw] == [b'{"id": "loop", "n": -1}'] * 3  # bytes untouched on every trip
    assert headers_of(raw[-1])["trace"] == b"keep-me"
    assert headers_of(raw[-1])[dl.REPLAY_COUNT] == b"2"

    refused = json.loads(deployment.cli("dlq", "replay").stdout)  # third time: at the limit of 2
    assert refused == {
        "considered": 1,
        "replayed": 0,
        "refused_replay_limit": 1,
        "refused_value_omitted": 0,
        "filtered_out": 0,
    }
    assert len(read_all(s, "testdomain.raw")) == 3

    listed = deployment.cli("dlq", "list", "--code", "SCHEMA-MINIMUM").stdout.decode().splitlines()
    assert len(listed) == 3 and all(json.loads(line)["path"] == "/n" for line in listed)
    assert w.metric("switchyard_events_rejected_total", domain="testdomain") == 3


def test_a_dead_letter_too_big_to_send_whole_leaves_its_value_out_and_is_not_replayed(
    deployment: Deployment,
) -> None:
    """A record the broker took, whose dead letter (the record plus the error headers) would be over the worker's
    record limit: sent whole, the producer would refuse it and its batch for good. Its dead letter leaves the
    value out and says so; the record behind it is dead-lettered whole and replays."""
    w = deployment.worker(SWITCHYARD_MAX_RECORD_BYTES="65536").start()
    s = deployment.settings
    big = json.dumps({"id": "big", "n": -1, "pad": "x" * 70_000}).encode()
    produce(
        s,
        "testdomain.raw",
        [(b"big", big, [("trace", b"keep-me")]), (b"small", b'{"id": "small", "n": -1}', [])],
    )

    def both_dead() -> list[Any] | None:
        dead = read_all(s, "testdomain.deadletter")
        return dead if {r.key for r in dead} == {b"big", b"small"} else None

    dead = wait_until(both_dead, what="both records dead-lettered")
    assert len(dead) == 2
    whole = {r.key: r for r in dead}
    assert whole[b"big"].value is None and whole[b"small"].value == b'{"id": "small", "n": -1}'
    assert headers_of(whole[b"big"])[dl.OMITTED] == f"value:{len(big)}".encode()
    assert headers_of(whole[b"big"])["trace"] == b"keep-me"  # the original headers fit, so they stay
    assert dl.OMITTED not in headers_of(whole[b"small"])

    listed = [json.loads(line) for line in deployment.cli("dlq", "list").stdout.decode().splitlines()]
    assert sorted((x["code"], x["omitted"]) for x in listed) == [
        ("SCHEMA-MINIMUM", ""),
        ("SCHEMA-MINIMUM", f"value:{len(big)}"),
    ]
    (omitted,) = (x for x in listed if x["omitted"])
    assert omitted["source"].endswith("@0") and ".testdomain.raw[" in omitted["source"]

    summary = json.loads(deployment.cli("dlq", "replay").stdout)
    assert summary == {
        "considered": 2,
        "replayed": 1,
        "refused_replay_limit": 0,
        "refused_value_omitted": 1,
        "filtered_out": 0,
    }
    raw = wait_until(
        lambda: len(r := read_all(s, "testdomain.raw")) == 3 and r, what="the small one replayed"
    )
    assert [r.key for r in raw].count(b"small") == 2
    assert w.proc is not None and w.proc.poll() is None
