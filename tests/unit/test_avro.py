"""The Avro codec: framings byte for byte as the Avro spec and Confluent define them, round trips, errors."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.avro import (
    AVRO_DIR,
    decode_body,
    decode_confluent,
    decode_single_object,
    encode_body,
    encode_confluent,
    encode_single_object,
    known_schemas,
    load_schema,
    reframe_confluent,
    schema_from_json,
)
from app.core.errors import DecodeError, EnrichError

AUDIT = load_schema("migration_audit")


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as the Avro specification defines it (the reference the codec must agree with)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def audit_datum(**changes: Any) -> dict[str, Any]:
    datum: dict[str, Any] = {
        "audit_id": "0b6f3a54-7c1d-5e2f-9a8b-1c2d3e4f5a6b",
        "event_id": "ab" * 32,
        "event_type": "customer_outgoing",
        "received_at": datetime(2026, 1, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "event_time": datetime(2026, 1, 1, 12, 30, 14, 999000, tzinfo=UTC),
        "code": "MIGR-0001",
        "message": "Customer migration registration approved",
        "status": "SUCCESS",
        "operation": "UPDATE",
        "migration": {
            "id": "m-1",
            "version_date": "2021-08-11T11:25:00.000Z",
            "account_id": "ACC-1",
            "phase_id": "Rollout_Jan2022",
        },
        "entity": {"account_id": 9999, "customer_id": 1234},
        "source": {"topic": "pismo.raw", "partition": 3, "offset": 42},
        "original_sha256": "cd" * 32,
    }
    datum.update(changes)
    return datum


def normalised(decoded: dict[str, Any]) -> dict[str, Any]:
    """fastavro returns the uuid logical type as a UUID; the writer was given its string form."""
    return {**decoded, "audit_id": str(decoded["audit_id"])}


def test_fingerprint_is_crc64_avro_of_the_parsing_canonical_form() -> None:
    assert AUDIT.fingerprint_int == crc64_avro(AUDIT.canonical.encode())
    assert AUDIT.canonical.startswith('{"name":"io.switchyard.pismo.MigrationAudit","type":"record"')
    assert '"doc"' not in AUDIT.canonical  # the canonical form drops documentation, so docs can change freely
    primitive = schema_from_json("int")
    assert (primitive.canonical, primitive.fingerprint_int) == ('"int"', crc64_avro(b'"int"'))


def test_single_object_framing_is_magic_then_little_endian_fingerprint_then_body() -> None:
    datum = audit_datum()
    encoded = encode_single_object(AUDIT, datum)
    assert encoded[:2] == b"\xc3\x01"
    assert encoded[2:10] == struct.pack("<Q", crc64_avro(AUDIT.canonical.encode()))
    assert encoded[10:] == encode_body(AUDIT, datum)


def test_single_object_round_trip_finds_the_schema_by_fingerprint() -> None:
    schema, decoded = decode_single_object(encode_single_object(AUDIT, audit_datum()))
    assert schema is AUDIT
    assert normalised(decoded) == audit_datum()
    assert isinstance(decoded["audit_id"], uuid.UUID)


def test_nullable_fields_round_trip_as_null() -> None:
    datum = audit_datum(event_time=None, operation=None, entity=None)
    datum["migration"] = {**datum["migration"], "phase_id": None}
    _, decoded = decode_single_object(encode_single_object(AUDIT, datum))
    assert normalised(decoded) == datum


def test_every_avsc_in_the_schema_directory_is_known_by_fingerprint() -> None:
    stems = sorted(p.stem for p in AVRO_DIR.glob("*.avsc"))
    assert "migration_audit" in stems
    assert {s.name for s in known_schemas().values()} == {load_schema(stem).name for stem in stems}


def test_confluent_framing_is_zero_then_big_endian_schema_id_then_body() -> None:
    datum = audit_datum()
    encoded = encode_confluent(AUDIT, datum, 258)
    assert encoded[:5] == b"\x00\x00\x00\x01\x02"
    assert encoded[5:] == encode_body(AUDIT, datum)
    schema_id, decoded = decode_confluent(encoded, {258: AUDIT})
    assert schema_id == 258
    assert normalised(decoded) == datum


def test_reframing_a_single_object_gives_the_confluent_encoding_of_the_same_datum() -> None:
    datum = audit_datum()
    assert reframe_confluent(encode_single_object(AUDIT, datum), 258) == encode_confluent(AUDIT, datum, 258)
    with pytest.raises(DecodeError) as caught:
        reframe_confluent(encode_confluent(AUDIT, datum, 258), 7)
    assert caught.value.code == "DECODE-AVRO-MAGIC"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "DECODE-AVRO-MAGIC"),
        (b"\xc3\x01\x00", "DECODE-AVRO-MAGIC"),
        (b"\x00\x00\x00\x00\x01" + b"\x02", "DECODE-AVRO-MAGIC"),
        (b"\xc3\x01" + b"\xff" * 8 + b"\x02", "DECODE-AVRO-SCHEMA"),
    ],
)
def test_single_object_decode_errors(data: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_single_object(data)
    assert info.value.code == code


def test_truncated_and_padded_bodies_are_rejected() -> None:
    encoded = encode_single_object(AUDIT, audit_datum())
    for broken in (encoded[:-5], encoded + b"\x00"):
        with pytest.raises(DecodeError) as info:
            decode_single_object(broken)
        assert info.value.code == "DECODE-AVRO"


def test_confluent_decode_errors() -> None:
    encoded = encode_confluent(AUDIT, audit_datum(), 7)
    with pytest.raises(DecodeError) as info:
        decode_confluent(encoded, {8: AUDIT})
    assert info.value.code == "DECODE-AVRO-SCHEMA"
    with pytest.raises(DecodeError) as info:
        decode_confluent(b"\xc3\x01" + encoded, {7: AUDIT})
    assert info.value.code == "DECODE-AVRO-MAGIC"
    with pytest.raises(DecodeError) as info:
        decode_body(AUDIT, encoded[5:-3])
    assert info.value.code == "DECODE-AVRO"


def test_a_datum_that_does_not_fit_names_the_field_never_the_value() -> None:
    with pytest.raises(EnrichError) as info:
        encode_single_object(AUDIT, audit_datum(status="SECRET-VALUE-123"))
    assert (info.value.code, info.value.path) == ("ENRICH-AVRO", "/status")
    assert "SECRET-VALUE-123" not in str(info.value)
    with pytest.raises(EnrichError) as info:
        encode_body(AUDIT, audit_datum(entity={"account_id": 2**63, "customer_id": 1}))
    assert info.value.code == "ENRICH-AVRO"
    assert str(2**63) not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=50),
    long=st.integers(-(2**63), 2**63 - 1),
    partition=st.integers(-(2**31), 2**31 - 1),
    micros=st.integers(0, 4_000_000_000_000_000),
)
def test_any_fitting_datum_round_trips(text: str, long: int, partition: int, micros: int) -> None:
    received = datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)
    datum = audit_datum(
        message=text,
        received_at=received,
        entity={"account_id": long, "customer_id": -long - 1},
        source={"topic": text, "partition": partition, "offset": long},
    )
    _, decoded = decode_single_object(encode_single_object(AUDIT, datum))
    assert normalised(decoded) == datum
