"""One codec per format. JSON here (orjson); Avro in :mod:`app.core.avro`.

Decoding is strict on purpose: invalid UTF-8, NaN/Infinity, nesting deeper than orjson allows and empty bodies
are decode errors with stable codes, never exceptions that escape an agent.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.core.errors import DecodeError

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def decode_json(value: bytes | None, *, max_bytes: int | None = None) -> Any:
    """Bytes -> JSON value, or :class:`DecodeError` with a code that says why."""
    if value is None or len(value) == 0:
        raise DecodeError("record has no value (empty body or tombstone)", code="DECODE-EMPTY")
    if max_bytes is not None and len(value) > max_bytes:
        raise DecodeError(
            f"record is {len(value)} bytes, over the limit of {max_bytes}", code="DECODE-TOO-LARGE"
        )
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("value is not valid UTF-8", code="DECODE-UTF8") from None
        # orjson's message names the position and the rule, never the document's content.
        raise DecodeError(f"value is not valid JSON: {exc.msg} (pos {exc.pos})", code="DECODE-JSON") from None


def decode_json_object(value: bytes | None, *, max_bytes: int | None = None) -> dict[str, Any]:
    """Like :func:`decode_json` but the top level must be an object (every upstream sends objects)."""
    doc = decode_json(value, max_bytes=max_bytes)
    if not isinstance(doc, dict):
        raise DecodeError(
            f"top-level JSON value is {type(doc).__name__}, expected object", code="DECODE-NOT-OBJECT"
        )
    return doc


def encode_json(obj: Any) -> bytes:
    """JSON-ready value -> bytes. datetimes become RFC 3339 via orjson."""
    return orjson.dumps(obj, option=JSON_OPTIONS)
