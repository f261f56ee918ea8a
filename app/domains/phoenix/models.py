"""The Phoenix bus envelope and the ``VCSessionDoneEvent`` v1 payload, as the seed states them.

The seed's JSON Schema (``schemas/phoenix/VCSessionDoneEventPayload.json``) describes ``eventData``; the
envelope around it is modelled from the seed's production example. The schema never forbids additional
properties, so no model here does either: Phoenix may add fields without Switchyard dead-lettering its events.

One deliberate deviation from the seed: its schema lists ``coach`` and ``talent`` (untyped relation
placeholders) as required, yet its own production example omits both, because Phoenix drops unloaded relations
when it serialises an appointment. Rejecting the seed's own example would dead-letter every real event, so
both are optional here.

``talentBlock`` is untyped in the schema (``{}`` or null). :class:`TalentBlock` reads what enrichment needs
from it, leniently and separately, so a talent block of an unexpected shape loses enrichment detail, not the
session.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainValidator,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

SESSION_DONE = "VCSessionDoneEvent"

AppointmentStatus = Literal["CANCELED", "DONE", "PLANNED"]
CanceledBy = Literal["COACH", "TALENT", "ADMIN"]
AppointmentType = Literal["STANDALONE", "PART_ONE", "PART_TWO"]
CancelationReason = Literal[
    "TALENT_ACTIVITIES_NOT_FINISHED",
    "TALENT_NEED_MORE_TIME",
    "TALENT_HAS_PROFESSIONAL_ENGAGMENT",
    "TALENT_HAS_PERSONAL_ENGAGEMENT",
    "TALENT_SUBPHASE_NOT_FINISHED",
    "TALENT_NOT_AVAILABLE_MORE_THAN_24H",
    "TALENT_NOT_AVAILABLE_LESS_THAN_24H",
    "TALENT_NO_SHOW",
    "TALENT_NOT_PRIORITIZING_HIS_PROGRAM",
    "COACH_NO_LONGER_AVAILABLE",
    "COACH_SET_WRONG_DATE_OR_HOUR",
    "TALENT_IS_DEPAIRED_OR_REPAIRED",
    "OTHER",
]

# A date, a time, optional seconds and fraction, optional offset: ISO-8601's extended datetime forms. The
# regex keeps out what ``fromisoformat`` would also take but ISO-8601 datetimes are not (a bare date).
_ISO_DATETIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_iso_datetime(text: str) -> datetime | None:
    """The seed's ``"format": "datetime"``: an ISO-8601 datetime, or None when ``text`` is not one.

    The contract test's format checker calls this too, so the model and the schema check agree by
    construction. A datetime without an offset is read as UTC (Phoenix writes UTC), so durations never mix
    naive and aware; every datetime comes out in UTC, the zone Switchyard writes.
    """
    if not _ISO_DATETIME.fullmatch(text):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace(",", "."))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _iso_datetime(value: Any) -> datetime:
    # pydantic's own datetime parsing also takes numbers and unix-timestamp strings, which the schema rejects.
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    parsed = parse_iso_datetime(value)
    if parsed is None:
        raise PydanticCustomError("datetime_parsing", "Input should be an ISO-8601 datetime")
    return parsed


def _version_one(value: int) -> int:
    if value != 1:
        raise PydanticCustomError("literal_error", "Input should be 1 (this is the v1 contract)")
    return value


IsoDatetime = Annotated[
    datetime, PlainValidator(_iso_datetime), WithJsonSchema({"type": "string", "format": "date-time"})
]
VersionOne = Annotated[StrictInt, AfterValidator(_version_one)]


class Appointment(BaseModel):
    """``eventData.appointment`` (the seed's ``AppointmentEntity``)."""

    model_config = ConfigDict(frozen=True)

    createdAt: IsoDatetime
    updatedAt: IsoDatetime | None = None
    deletedAt: IsoDatetime | None = None
    id: StrictStr
    title: StrictStr
    description: StrictStr | None
    startDate: IsoDatetime | None = None
    endDate: IsoDatetime | None = None
    coach: Any = None  # required by the seed schema, optional here: see the module docstring
    coachId: StrictStr
    talent: Any = None  # required by the seed schema, optional here: see the module docstring
    talentId: StrictStr
    status: AppointmentStatus
    cancelationReason: CancelationReason | None = None
    cancelationExplanation: StrictStr | None = None
    canceledBy: CanceledBy | None = None
    talentBlock: Any = None
    talentBlockId: StrictStr | None
    subphase: Any = None
    subphaseId: StrictStr | None
    appointmentType: AppointmentType
    updateDetails: list[Any] | None = None
    updateDetailsIds: list[StrictStr]


class EventData(BaseModel):
    """``eventData``: the payload the seed's schema describes, plus the bus's own name/type/version echo."""

    model_config = ConfigDict(frozen=True)

    name: StrictStr | None = None
    type: StrictStr | None = None
    keyId: StrictStr | None = None
    version: VersionOne = 1
    appointment: Appointment


class SessionDoneEnvelope(BaseModel):
    """A ``VCSessionDoneEvent`` as it travels on the Phoenix bus. ``id`` is the bus's event id (dedupe
    key)."""

    model_config = ConfigDict(frozen=True)

    id: StrictInt
    createdAt: IsoDatetime
    updatedAt: IsoDatetime | None = None
    eventName: Literal["VCSessionDoneEvent"]
    keyId: StrictStr | None = None
    eventData: EventData
    status: StrictStr | None = None
    publisherNodeId: StrictStr | None = None
    processorNodeId: StrictStr | None = None
    version: StrictInt | None = None
    userId: StrictStr | None = None
    talentId: StrictStr | None = None


class BusHeader(BaseModel):
    """The least every bus event must have: its name, which decides whether Switchyard handles it."""

    eventName: StrictStr
    id: Any = None


class Block(BaseModel):
    """``talentBlock.block``: the program's block definition (only what enrichment reads)."""

    id: StrictStr | None = None
    type: StrictStr | None = None
    title: StrictStr | None = None


class TalentPhase(BaseModel):
    """``talentBlock.talentPhase``: the talent's instance of a program phase."""

    id: StrictStr | None = None
    order: StrictInt | None = None
    status: StrictStr | None = None
    phaseId: StrictStr | None = None
    parentId: StrictStr | None = None
    programId: StrictStr | None = None


class TalentBlock(BaseModel):
    """``appointment.talentBlock``: the talent's instance of a program block, with its block and phase."""

    id: StrictStr | None = None
    order: StrictInt | None = None
    status: StrictStr | None = None
    blockId: StrictStr | None = None
    programId: StrictStr | None = None
    talentPhaseId: StrictStr | None = None
    block: Block | None = None
    talentPhase: TalentPhase | None = None


class EnrichedSession(BaseModel):
    """The value on ``phoenix.sessions.enriched`` (key talentId) and ``phoenix.sessions.by-coach`` (key
    coachId).

    The table folds read it back, so it carries everything they need: the appointment's version
    (``updatedAt``/``createdAt`` and the bus ``eventId``) decides which delivery of an appointment is the
    latest. Free text (title, description, cancelation explanation) stays on the raw topic.
    """

    model_config = ConfigDict(frozen=True)

    eventId: int
    eventName: str
    publishedAt: datetime
    processedAt: datetime
    appointmentId: str
    talentId: str
    coachId: str
    status: AppointmentStatus
    appointmentType: AppointmentType
    createdAt: datetime
    updatedAt: datetime | None
    deletedAt: datetime | None
    startDate: datetime | None
    endDate: datetime | None
    sessionSeconds: float | None
    sessionMinutes: float | None
    processingDelaySeconds: float | None
    programId: str | None
    talentPhaseId: str | None
    phaseId: str | None
    phaseOrder: int | None
    talentBlockId: str | None
    blockId: str | None
    blockOrder: int | None
    subphaseId: str | None
    cancelationReason: CancelationReason | None
    canceledBy: CanceledBy | None
