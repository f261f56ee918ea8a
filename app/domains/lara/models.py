"""The six Lära record types, shaped as the seed's request and response bodies.

The seed marks no field as required ("en modification, seul l'id est obligatoire": a partial record updates
what it names), so only what identifies a record, and what a status range cannot exist without, is required.
Identifiers and the way a user is named are checked before these models run, by
:mod:`app.domains.lara.checks`, because the seed gives those rules their own error codes (LARA-1000..1009);
the models hold the shapes (types, enums, limits) and answer with SCHEMA-* codes.

The seed never forbids additional properties, so unknown fields are ignored rather than dead-lettered: Lära may
add fields without stopping the stream. Numbers and booleans are strict: JSON ``"80"`` is not a number and
``1`` is not ``true``, because a silent coercion would hide an upstream change.

Dates are the LMS's ISO-8601 datetimes; the seed writes most without an offset ("2018-02-08T15:02:45.73") and
its filter dates with ``Z``, so a datetime without an offset is read as UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

CYCLE = "cycle"
PERIOD = "period"
USER_PROGRESS = "user_progress"
MEMBER_STATUSES = "member_statuses"
MEMBER_STATUS_UPDATE = "member_status_update"
MEMBER_STATUS_CHANGE = "member_status_change"
EVENT_TYPES: tuple[str, ...] = (
    CYCLE,
    PERIOD,
    USER_PROGRESS,
    MEMBER_STATUSES,
    MEMBER_STATUS_UPDATE,
    MEMBER_STATUS_CHANGE,
)
MEMBER_TYPES = frozenset({MEMBER_STATUSES, MEMBER_STATUS_UPDATE, MEMBER_STATUS_CHANGE})

#: languageId -> BCP 47 tag (seed: 1 Français (Canada), 2 Anglais, 3 Français (France), 4 Espagnol)
LANGUAGES: dict[int, str] = {1: "fr-CA", 2: "en", 3: "fr-FR", 4: "es"}
#: durationUnit -> name (seed: 0 heures, 1 jours, 2 semaines, 3 mois, 4 années)
DURATION_UNITS: dict[int, str] = {0: "hours", 1: "days", 2: "weeks", 3: "months", 4: "years"}
#: requirement type -> name (seed: 1 crédits, 2 types de formations, 3 nombre de catégories)
REQUIREMENT_TYPES: dict[int, str] = {1: "credits", 2: "training-types", 3: "categories"}
CREDITS = 1

_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?(?:Z|[+-]\d{2}:\d{2})?")


def parse_datetime(text: str) -> datetime | None:
    """A Lära datetime in UTC, or None when ``text`` is not one (the seed's .NET form has up to 7 fraction
    digits; the 7th, 100 ns, is dropped)."""
    if not _DATETIME.fullmatch(text):
        return None
    head, dot, rest = text.partition(".")
    if dot:
        digits = re.match(r"\d+", rest)
        assert digits is not None
        text = f"{head}.{digits.group()[:6]}{rest[digits.end() :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be an ISO-8601 datetime string")
    parsed = parse_datetime(value)
    if parsed is None:
        raise PydanticCustomError("datetime_parsing", "Input should be an ISO-8601 datetime")
    return parsed


def _open_end(value: Any) -> Any:
    # The seed: endDate is "vide si la plage est en cours"; empty and null both mean an open range.
    return None if value == "" else value


def _exact_int(value: Any) -> Any:
    # pydantic's Literal[1, 2] also matches True and 1.0; the seed's enums are integers.
    if isinstance(value, bool) or not isinstance(value, int):
        raise PydanticCustomError("int_type", "Input should be an integer")
    return value


#: The JSON Schema of a Lära datetime (for ``switchyard asyncapi``): what :func:`parse_datetime` accepts. Not
#: ``format: date-time``, which needs an offset that Lära mostly leaves out.
_DATETIME_SCHEMA = {
    "type": "string",
    "pattern": f"^{_DATETIME.pattern}$",
    "description": "ISO-8601 datetime, up to 7 fraction digits; without an offset it is UTC",
}
LaraDateTime = Annotated[datetime, PlainValidator(_datetime), WithJsonSchema(_DATETIME_SCHEMA)]
OpenEnd = Annotated[
    LaraDateTime | None,
    BeforeValidator(_open_end),
    WithJsonSchema({"anyOf": [_DATETIME_SCHEMA, {"type": "null"}, {"const": ""}]}),
]
LanguageId = Annotated[Literal[1, 2, 3, 4], BeforeValidator(_exact_int)]
DurationUnit = Annotated[Literal[0, 1, 2, 3, 4], BeforeValidator(_exact_int)]
RequirementType = Annotated[Literal[1, 2, 3], BeforeValidator(_exact_int)]
Credits = Annotated[float, Field(ge=0)]


class LaraModel(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True)


class LocalizedText(LaraModel):
    text: StrictStr
    languageId: LanguageId


class MultilingualName(LaraModel):
    texts: list[LocalizedText]


class Cycle(LaraModel):
    """One training cycle ("règlement") as cycle/getlist returns it."""

    cycleId: str
    adminName: StrictStr | None = None
    name: MultilingualName | None = None
    ruleId: str | None = None
    isActive: StrictBool | None = None
    isDeleted: StrictBool | None = None


class Requirement(LaraModel):
    """What a period requires: ``targetValue`` credits (type 1), training types (2) or categories (3)."""

    id: str
    cyclePeriodId: str | None = None
    type: RequirementType
    targetValue: Credits | None = None
    parentId: str | None = None
    ruleId: str | None = None
    providerId: str | None = None


class Period(LaraModel):
    """One period of a cycle as cycle/getperiodlist returns it; it lasts ``duration`` x ``durationUnit``."""

    cyclePeriodId: str
    cycleId: str
    adminName: StrictStr | None = None
    startDate: LaraDateTime | None = None
    duration: Annotated[int, Field(ge=1)] | None = None
    durationUnit: DurationUnit | None = None
    isRequirementsShown: StrictBool | None = None
    ruleId: str | None = None
    isUserStatement: StrictBool | None = None
    isActive: StrictBool | None = None
    isDeleted: StrictBool | None = None
    requirements: list[Requirement] = []


class UserProgress(LaraModel):
    """A member's credits in a cycle (``id``) as cycle/getuserprogress returns them."""

    id: str
    memberId: str
    requiredCredits: Credits | None = None
    completedCredits: Credits | None = None
    exemptedCredits: Credits | None = None
    providerCredits: Credits | None = None
    customFieldAPIName: str | None = None


class StatusRange(LaraModel):
    """One status range. ``isActiveMember`` null means "derive it from the status name" (seed)."""

    entryId: str | None = None
    userId: str | None = None
    status: StrictStr
    isActiveMember: StrictBool | None = None
    startDate: LaraDateTime
    endDate: OpenEnd = None


class NamedUser(LaraModel):
    """userId if known, else customFieldAPIName + customFieldValue (checked by the LARA rules)."""

    userId: str | None = None
    customFieldAPIName: str | None = None
    customFieldValue: StrictStr | None = None


class MemberStatuses(NamedUser):
    """Every status range of a member (cycle/updatememberstatuses, or the getmemberstatuses response)."""

    statuses: list[StatusRange]


class MemberStatusUpdate(NamedUser):
    """One range, named by ``entryId``, set to ``status`` (cycle/updatememberstatus)."""

    entryId: str
    status: StatusRange


class MemberStatusChange(NamedUser):
    """Close the member's active range where ``status`` starts and open ``status``
    (cycle/changecurrentmemberstatus)."""

    status: StatusRange


MODELS: dict[str, type[LaraModel]] = {
    CYCLE: Cycle,
    PERIOD: Period,
    USER_PROGRESS: UserProgress,
    MEMBER_STATUSES: MemberStatuses,
    MEMBER_STATUS_UPDATE: MemberStatusUpdate,
    MEMBER_STATUS_CHANGE: MemberStatusChange,
}
