"""One codec per format. JSON here (orjson); Avro in :mod:`app.core.avro`.

Decoding is strict on purpose: invalid UTF-8, NaN/Infinity, nesting deeper than :data:`MAX_DEPTH` and empty bodies
are decode errors with stable codes, never exceptions that escape an agent.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.core.errors import DecodeError

JSON_OPTIONS = orjson.OPT_NON_STR_KEYS
#: orjson parses up to 1024 levels but encodes only 254: a deeper document could be decoded and validated (where
#: models ignore unknown fields) and then fail to re-encode in its event id or in an output that wraps it, outside
#: any error code. Real upstream documents nest under 20 levels; the rest of the 254 is room for wrapping.
MAX_DEPTH = 100


def _too_deep(value: bytes, doc: Any) -> bool:
    # Brackets counted over the bytes (strings included) bound the depth from above, and cost next to nothing.
    if value.count(b"[") + value.count(b"{") <= MAX_DEPTH:
        return False
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def decode_json(value: bytes | None, *, max_bytes: int | None = None) -> Any:
    """Bytes -> JSON value, or :class:`DecodeError` with a code that says why."""
    if value is None or len(value) == 0:
        raise DecodeError("record has no value (empty body or tombstone)", code="DECODE-EMPTY")
    if max_bytes is not None and len(value) > max_bytes:
        raise DecodeError(
            f"record is {len(value)} bytes, over the limit of {max_bytes}", code="DECODE-TOO-LARGE"
        )
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("value is not valid UTF-8", code="DECODE-UTF8") from None
        # orjson's message names the position and the rule, never the document's content.
        raise DecodeError(f"value is not valid JSON: {exc.msg} (pos {exc.pos})", code="DECODE-JSON") from None
    if _too_deep(value, doc):
        raise DecodeError(f"JSON nests deeper than {MAX_DEPTH} levels", code="DECODE-TOO-DEEP")
    return doc


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
