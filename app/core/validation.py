"""pydantic -> Switchyard validation errors, with stable codes and JSON-pointer paths.

The dead-letter header ``switchyard.error.code`` must be stable across pydantic versions and readable by an SRE,
so pydantic's error types are mapped onto a short vocabulary named after the JSON Schema keyword that failed.
The message is pydantic's ``msg`` (which names the rule, e.g. "String should have at most 255 characters") and
never its ``input``: records carry personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from app.core.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)

_CODES: dict[str, str] = {
    "missing": "SCHEMA-REQUIRED",
    "extra_forbidden": "SCHEMA-ADDITIONAL-PROPERTY",
    "literal_error": "SCHEMA-ENUM",
    "enum": "SCHEMA-ENUM",
    "string_too_long": "SCHEMA-MAX-LENGTH",
    "string_too_short": "SCHEMA-MIN-LENGTH",
    "too_long": "SCHEMA-MAX-ITEMS",
    "too_short": "SCHEMA-MIN-ITEMS",
    "greater_than_equal": "SCHEMA-MINIMUM",
    "greater_than": "SCHEMA-MINIMUM",
    "less_than_equal": "SCHEMA-MAXIMUM",
    "less_than": "SCHEMA-MAXIMUM",
    "datetime_parsing": "SCHEMA-FORMAT",
    "datetime_from_date_parsing": "SCHEMA-FORMAT",
    "datetime_type": "SCHEMA-FORMAT",
    "timezone_aware": "SCHEMA-FORMAT",
    "date_parsing": "SCHEMA-FORMAT",
    "date_from_datetime_parsing": "SCHEMA-FORMAT",
    "string_pattern_mismatch": "SCHEMA-PATTERN",
    "union_tag_invalid": "SCHEMA-ENUM",
    "union_tag_not_found": "SCHEMA-REQUIRED",
    "value_error": "SCHEMA-INVALID",
    "assertion_error": "SCHEMA-INVALID",
}


def json_pointer(loc: Iterable[Any]) -> str:
    """pydantic ``loc`` -> RFC 6901 pointer, dropping the names pydantic adds for union members."""
    parts: list[str] = []
    for p in loc:
        if isinstance(p, str) and (p.startswith("function-") or "[" in p or p in {"tagged-union"}):
            continue
        parts.append(str(p).replace("~", "~0").replace("/", "~1"))
    return "/" + "/".join(parts) if parts else ""


def code_for(error_type: str) -> str:
    if error_type in _CODES:
        return _CODES[error_type]
    if error_type.endswith("_type") or error_type.endswith("_parsing"):
        return "SCHEMA-TYPE"
    return "SCHEMA-INVALID"


def from_pydantic(exc: PydanticValidationError, *, prefix: str = "") -> ValidationFailed:
    """The first error of ``exc`` as a :class:`ValidationFailed` (the first is the one a fixer needs)."""
    errors = exc.errors(include_input=False, include_url=False)
    first = errors[0]
    path = prefix + json_pointer(first["loc"])
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return ValidationFailed(f"{first['msg']}{more}", code=code_for(first["type"]), path=path)


def validate(model: type[M], doc: Any, *, prefix: str = "") -> M:
    """Validate a decoded JSON document against ``model``; raise :class:`ValidationFailed` on failure."""
    try:
        return model.model_validate(doc)
    except PydanticValidationError as exc:
        raise from_pydantic(exc, prefix=prefix) from None
