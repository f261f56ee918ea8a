"""The ``customer_outgoing`` v1 event, judged exactly as the seed's draft-07 schema is by jsonschema.

The contract test holds these models against ``schemas/pismo/customer_outgoing-1.json`` with jsonschema's
Draft7 validator and format checker, so three JSON Schema rules pydantic handles differently are spelled out:

- *optional is not nullable*: ``phase_id``, ``entity`` and ``operation`` may be absent, but ``null`` is not a
  string/object, so an explicit null is a type error.
- *integer* means any JSON number with no fractional part (draft-06 and later): ``9999`` and ``9999.0`` are
  integers; ``"9999"``, ``true`` and ``9999.5`` are not. Integral floats are normalised to ``int``.
- *date-time* is RFC 3339's ``date-time``: a full date and time with a ``Z`` or ``±hh:mm`` offset, valid day of
  month, any fraction of a second, ``t``/``z`` in either case, and nothing after the offset. Pydantic's own
  datetime parsing is laxer (no offset, a space for ``T``, unix numbers), so it is not used; so is
  ``rfc3339-validator`` (jsonschema's checker), whose ``$`` anchor lets one trailing newline through.
"""

from __future__ import annotations

import calendar
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

Status = Literal["SUCCESS", "FAIL"]
Operation = Literal["CREATION", "UPDATE"]

_RFC3339 = re.compile(
    r"([0-9]{4})-(0[1-9]|1[0-2])-([0-9]{2})"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
    # ``\Z``, not ``$``: ``$`` also matches before a final newline, and "...Z\n" is no RFC 3339 date-time.
    r"\Z"
)


def is_rfc3339_date_time(value: str) -> bool:
    """RFC 3339 ``date-time``: jsonschema's format check (``rfc3339-validator``) minus its trailing-newline quirk."""
    m = _RFC3339.match(value.upper())
    if m is None:
        return False
    year, month, day = (int(g) for g in m.groups())
    return year != 0 and 1 <= day <= calendar.monthrange(year, month)[1]


def _date_time(value: str) -> str:
    if not is_rfc3339_date_time(value):
        raise PydanticCustomError(
            "datetime_parsing", "Input should be an RFC 3339 date-time with a time-zone offset"
        )
    return value


def _not_null(value: Any) -> Any:
    if value is None:
        raise PydanticCustomError(
            "null_type", "Input should not be null: the field may be absent, never null"
        )
    return value


def _json_integer(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


DateTime = Annotated[str, AfterValidator(_date_time)]
JsonInteger = Annotated[int, BeforeValidator(_json_integer)]
NotNull = BeforeValidator(_not_null)


class Migration(BaseModel):
    """Identifier sent on start of the migration process."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    version_date: DateTime
    account_id: str
    phase_id: Annotated[str | None, NotNull] = None


class Entity(BaseModel):
    """The customer as Pismo generated it (present once the customer exists on Pismo's side)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    account_id: JsonInteger
    customer_id: JsonInteger


class CustomerOutgoing(BaseModel):
    """Customer migration completed: the result of one customer's migration, SUCCESS or FAIL."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    code: str
    message: str
    migration: Migration
    status: Status
    entity: Annotated[Entity | None, NotNull] = None
    operation: Annotated[Operation | None, NotNull] = None
