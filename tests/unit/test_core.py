"""Core mechanics without a broker: codecs, validation codes, dead-letter headers, catalog, dedupe, webhooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import BaseModel, ConfigDict, Field

from app.core import deadletter as dl
from app.core.catalog import duration_ms, load_catalog
from app.core.codecs import decode_json, decode_json_object
from app.core.dedupe import SeenIds
from app.core.errors import ConfigError, DecodeError, ValidationFailed
from app.core.records import RawRecord, content_event_id
from app.core.validation import validate
from app.ingress.webhooks import WebhookSource, check_delivery, sign
from app.settings import Settings

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "DECODE-EMPTY"),
        (b"", "DECODE-EMPTY"),
        (b"\xff\xfe{", "DECODE-UTF8"),
        (b'{"a": ', "DECODE-JSON"),
        (b'{"a": NaN}', "DECODE-JSON"),
        (b"[" * 2000 + b"]" * 2000, "DECODE-JSON"),
    ],
)
def test_decode_errors_have_stable_codes(value: bytes | None, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_json(value)
    assert info.value.code == code and info.value.stage == "decode"


def test_decode_object_rejects_other_json_and_oversize() -> None:
    with pytest.raises(DecodeError, match="expected object"):
        decode_json_object(b"[1, 2]")
    with pytest.raises(DecodeError) as info:
        decode_json_object(b'{"a": 1}', max_bytes=3)
    assert info.value.code == "DECODE-TOO-LARGE"


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=3)


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Inner]
    when: datetime


@pytest.mark.parametrize(
    ("doc", "code", "path"),
    [
        ({"items": [], "when": "2020-01-01T00:00:00Z", "x": 1}, "SCHEMA-ADDITIONAL-PROPERTY", "/x"),
        (
            {"items": [{"name": "toolong"}], "when": "2020-01-01T00:00:00Z"},
            "SCHEMA-MAX-LENGTH",
            "/items/0/name",
        ),
        ({"items": [{}], "when": "2020-01-01T00:00:00Z"}, "SCHEMA-REQUIRED", "/items/0/name"),
        ({"items": [], "when": "yesterday"}, "SCHEMA-FORMAT", "/when"),
        ({"items": 3, "when": "2020-01-01T00:00:00Z"}, "SCHEMA-TYPE", "/items"),
    ],
)
def test_validation_errors_name_the_rule_and_the_path(doc: dict[str, object], code: str, path: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        validate(Outer, doc)
    assert (info.value.code, info.value.path) == (code, path)


def test_validation_messages_never_quote_the_input() -> None:
    with pytest.raises(ValidationFailed) as info:
        validate(Inner, {"name": "secret-value-123"})
    assert "secret-value-123" not in str(info.value)


def test_deadletter_headers_keep_originals_first_then_errors() -> None:
    raw = RawRecord(b"v", b"k", (("a", b"1"), ("b", b"2")), "t.raw", 2, 41)
    err = ValidationFailed("bad", code="SCHEMA-ENUM", path="/status")
    headers = dl.deadletter_headers(raw, err, NOW)
    assert headers[:2] == (("a", b"1"), ("b", b"2"))
    got = dict(headers[2:])
    assert got[dl.CODE] == b"SCHEMA-ENUM" and got[dl.PATH] == b"/status" and got[dl.STAGE] == b"validate"
    assert got[dl.SOURCE_PARTITION] == b"2" and got[dl.SOURCE_OFFSET] == b"41"
    assert got[dl.FAILED_AT] == b"2026-01-02T03:04:05Z"


def test_replay_headers_drop_errors_and_count_replays() -> None:
    rec = dl.DeadLetter(
        "x.deadletter",
        0,
        0,
        b"k",
        b"v",
        (("a", b"1"), (dl.REPLAY_COUNT, b"1"), (dl.CODE, b"X"), (dl.SOURCE_TOPIC, b"x.raw")),
    )
    assert rec.replays == 1
    assert rec.replay_headers() == (("a", b"1"), (dl.REPLAY_COUNT, b"2"))


def test_catalog_lists_every_domain_with_one_raw_and_one_deadletter_topic() -> None:
    cat = load_catalog()
    for domain in cat.domains:
        assert cat.raw_topic(domain).role == "raw"
        assert cat.deadletter_topic(domain).name == f"{domain}.deadletter"
    assert cat.get("phoenix.talent-progress").kafka_config() == {"cleanup.policy": "compact"}
    # what the engine sends only each key's last value of a batch to: the snapshot topics, never a command topic
    assert cat.compacted_topics() == {
        "phoenix.talent-progress",
        "phoenix.coach-activity",
        "vome.volunteers",
        "lara.compliance",
    }
    assert cat.get("audit.migration").kafka_config()["retention.ms"] == str(365 * 86_400_000)
    with pytest.raises(ConfigError):
        cat.get("no.such.topic")
    with pytest.raises(ConfigError):
        duration_ms("7 days")


def test_seen_ids_expire_after_the_ttl() -> None:
    store: dict[bytes, bytes] = {}
    seen = SeenIds(store, ttl_seconds=60)
    assert not seen.seen("e1", NOW)
    seen.mark("e1", NOW)
    assert seen.seen("e1", NOW + timedelta(seconds=59))
    assert not seen.seen("e1", NOW + timedelta(seconds=61))


def test_content_event_id_ignores_key_order_and_whitespace() -> None:
    assert content_event_id("t", {"a": 1, "b": [1, 2]}) == content_event_id("t", {"b": [1, 2], "a": 1})
    assert content_event_id("t", {"a": 1}) != content_event_id("u", {"a": 1})


SOURCE = WebhookSource(
    "vome", "/webhooks/vome/{trigger}", lambda t, b: b.get("id"), triggers={"profile.created"}
)


@pytest.mark.parametrize(
    ("trigger", "body", "signature", "secret", "status"),
    [
        ("profile.created", b'{"id": "1"}', None, None, 202),
        ("nope", b'{"id": "1"}', None, None, 404),
        ("profile.created", b"x" * 101, None, None, 413),
        ("profile.created", b"not json", None, None, 400),
        ("profile.created", b"[1]", None, None, 400),
        ("profile.created", b'{"id": "1"}', None, "s3cret", 401),
        ("profile.created", b'{"id": "1"}', "sha256=00", "s3cret", 401),
        ("profile.created", b'{"id": "1"}', sign("s3cret", b'{"id": "1"}'), "s3cret", 202),
    ],
)
def test_webhook_delivery_checks(
    trigger: str, body: bytes, signature: str | None, secret: str | None, status: int
) -> None:
    assert check_delivery(SOURCE, trigger, body, signature, secret, max_bytes=100).status == status


def test_producers_do_not_compress_unless_told_to(monkeypatch: pytest.MonkeyPatch) -> None:
    """lz4 cost the worker 5-29 % more CPU per event (design note 12): none by default, lz4 one setting away."""
    monkeypatch.delenv("SWITCHYARD_PRODUCER_COMPRESSION", raising=False)
    assert Settings().producer_options()["compression_type"] is None
    monkeypatch.setenv("SWITCHYARD_PRODUCER_COMPRESSION", "lz4")
    assert Settings().producer_options()["compression_type"] == "lz4"


def test_every_producer_and_the_engine_share_one_record_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """One setting bounds what the engine lets through and what the producers accept: a record the engine passed
    must never fail its batch at the producer (Faust's is set from the same value in ``build_faust_app``)."""
    monkeypatch.delenv("SWITCHYARD_MAX_RECORD_BYTES", raising=False)
    assert Settings().producer_options()["max_request_size"] == 1_000_000
    monkeypatch.setenv("SWITCHYARD_MAX_RECORD_BYTES", "200000")
    assert Settings().producer_options()["max_request_size"] == 200_000
