"""The one Avro codec: schemas from ``schemas/avro``, two framings of the same binary body.

Outputs read by other teams (the compliance audit trail first) are Avro because they outlive the code that
writes them: a reader needs the exact writer schema, so every record names it. Two framings exist and both are
supported because both are common among downstream readers:

- *single-object encoding* (Avro spec): ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the
  schema's Parsing Canonical Form + body. Self-describing without a registry; the default.
- *Confluent wire format*: ``00`` + 4-byte big-endian registry schema id + body, for deployments with a schema
  registry (the id comes from the registry, so decode takes an id -> schema mapping).

Errors follow the house tree: a body that cannot be decoded is a :class:`DecodeError`; a datum that does not
fit its schema is an :class:`EnrichError` (the output could not be built). Messages name the field, never its
value.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint as _fingerprint
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import validate as _validate

from app.core.errors import DecodeError, EnrichError
from app.paths import SCHEMAS_DIR

AVRO_DIR = SCHEMAS_DIR / "avro"
SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_SINGLE_HEADER = len(SINGLE_OBJECT_MAGIC) + 8
_CONFLUENT_HEADER = len(CONFLUENT_MAGIC) + 4


@dataclass(frozen=True, eq=False)
class AvroSchema:
    """A parsed writer schema with the identity single-object encoding puts on the wire."""

    name: str
    parsed: Any = field(repr=False)
    canonical: str = field(repr=False)
    fingerprint: bytes

    @property
    def fingerprint_int(self) -> int:
        return int.from_bytes(self.fingerprint, "little")


def schema_from_json(schema: Mapping[str, Any] | str) -> AvroSchema:
    """Build an :class:`AvroSchema` from a schema document (a dict, or a primitive type name)."""
    raw: Any = dict(schema) if isinstance(schema, Mapping) else schema
    canonical = to_parsing_canonical_form(raw)
    # fastavro spells the fingerprint as the hex of its little-endian bytes, the order the wire wants.
    fp = bytes.fromhex(_fingerprint(canonical, "CRC-64-AVRO"))
    parsed = fastavro.parse_schema(raw)
    name = parsed.get("name", str(raw)) if isinstance(parsed, dict) else str(raw)
    return AvroSchema(name=name, parsed=parsed, canonical=canonical, fingerprint=fp)


def load_schema(stem: str, directory: Path = AVRO_DIR) -> AvroSchema:
    """``schemas/avro/<stem>.avsc``, parsed once per process (one object per file, however it is named)."""
    return _load((directory / f"{stem}.avsc").resolve())


def catalog_schema(relative: str) -> AvroSchema:
    """The schema a catalog entry names (``schema: avro/<file>.avsc``, relative to ``schemas/``)."""
    return _load((SCHEMAS_DIR / relative).resolve())


@cache
def _load(path: Path) -> AvroSchema:
    return schema_from_json(json.loads(path.read_text()))


@cache
def known_schemas(directory: Path = AVRO_DIR) -> Mapping[bytes, AvroSchema]:
    """Every schema of ``schemas/avro`` by fingerprint: what single-object decoding can recognise."""
    found = (load_schema(p.stem, directory) for p in sorted(directory.glob("*.avsc")))
    return {s.fingerprint: s for s in found}


def encode_body(schema: AvroSchema, datum: Mapping[str, Any]) -> bytes:
    """The bare Avro binary body (no framing)."""
    out = io.BytesIO()
    try:
        fastavro.schemaless_writer(out, schema.parsed, datum)
    except Exception:
        raise _misfit(schema, datum) from None
    return out.getvalue()


def decode_body(schema: AvroSchema, body: bytes) -> Any:
    """Body -> datum; the whole body must be consumed, so a truncated or padded record is rejected."""
    buf = io.BytesIO(body)
    try:
        datum = fastavro.schemaless_reader(buf, schema.parsed, None)
    except Exception as exc:
        raise DecodeError(
            f"Avro body does not decode with schema {schema.name} ({type(exc).__name__})", code="DECODE-AVRO"
        ) from None
    if buf.tell() != len(body):
        raise DecodeError(
            f"Avro body has {len(body) - buf.tell()} trailing bytes after a {schema.name} record",
            code="DECODE-AVRO",
        )
    return datum


def encode_single_object(schema: AvroSchema, datum: Mapping[str, Any]) -> bytes:
    return SINGLE_OBJECT_MAGIC + schema.fingerprint + encode_body(schema, datum)


def decode_single_object(
    data: bytes, schemas: Mapping[bytes, AvroSchema] | None = None
) -> tuple[AvroSchema, Any]:
    """Find the writer schema by fingerprint (default: every schema in ``schemas/avro``) and decode."""
    if len(data) < _SINGLE_HEADER or not data.startswith(SINGLE_OBJECT_MAGIC):
        raise DecodeError(
            "value is not Avro single-object encoded (magic C3 01 missing)", code="DECODE-AVRO-MAGIC"
        )
    fp = data[len(SINGLE_OBJECT_MAGIC) : _SINGLE_HEADER]
    schema = (known_schemas() if schemas is None else schemas).get(fp)
    if schema is None:
        raise DecodeError(
            f"no known Avro schema has fingerprint {int.from_bytes(fp, 'little'):016x}",
            code="DECODE-AVRO-SCHEMA",
        )
    return schema, decode_body(schema, data[_SINGLE_HEADER:])


def encode_confluent(schema: AvroSchema, datum: Mapping[str, Any], schema_id: int) -> bytes:
    return CONFLUENT_MAGIC + struct.pack(">I", schema_id) + encode_body(schema, datum)


def reframe_confluent(single_object: bytes, schema_id: int) -> bytes:
    """A single-object encoded record in Confluent wire format: the body stays, only the header changes."""
    if len(single_object) < _SINGLE_HEADER or not single_object.startswith(SINGLE_OBJECT_MAGIC):
        raise DecodeError(
            "value is not Avro single-object encoded (magic C3 01 missing)", code="DECODE-AVRO-MAGIC"
        )
    return CONFLUENT_MAGIC + struct.pack(">I", schema_id) + single_object[_SINGLE_HEADER:]


def decode_confluent(data: bytes, schemas_by_id: Mapping[int, AvroSchema]) -> tuple[int, Any]:
    """Confluent wire format -> (registry schema id, datum); the caller supplies the registry's schemas."""
    if len(data) < _CONFLUENT_HEADER or not data.startswith(CONFLUENT_MAGIC):
        raise DecodeError(
            "value is not in Confluent wire format (magic 00 missing)", code="DECODE-AVRO-MAGIC"
        )
    (schema_id,) = struct.unpack(">I", data[1:_CONFLUENT_HEADER])
    schema = schemas_by_id.get(schema_id)
    if schema is None:
        raise DecodeError(f"schema id {schema_id} is not known", code="DECODE-AVRO-SCHEMA")
    return schema_id, decode_body(schema, data[_CONFLUENT_HEADER:])


def _misfit(schema: AvroSchema, datum: Mapping[str, Any]) -> EnrichError:
    """Locate the offending field; fastavro's own messages quote the value, so they are dropped."""
    field = ""
    try:
        _validate(datum, schema.parsed, raise_errors=True)
    except Exception as exc:
        errors = getattr(exc, "errors", None) or []
        field = next((str(e.field) for e in errors if getattr(e, "field", None)), "")
    path = "/" + field.rsplit(".", 1)[-1] if field else ""
    return EnrichError(f"record does not fit Avro schema {schema.name}", code="ENRICH-AVRO", path=path)
