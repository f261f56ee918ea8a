"""What Lära publishes, as models: the three table feeds and the compliance snapshot. Their JSON Schemas are what
``switchyard asyncapi`` tells the consumers of ``lara.statuses.feed``, ``lara.cycles.feed``,
``lara.compliance.feed`` and ``lara.compliance``.

Stage one and the folds build these values as plain dicts (:mod:`app.domains.lara.enrich`,
:mod:`app.domains.lara.state`), so nothing at run time uses these classes; ``tests/unit/test_asyncapi.py`` holds
them to the code by validating every value the rules emit for the seed samples and generated traffic against the
published schema, fields the models do not name included. A feed carries several kinds of value, told apart by
``type`` (the record type, on the two stage-one feeds) or ``kind`` (on the compliance feed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.domains.lara.models import DurationUnit, RequirementType

Credits = float | None


class TimelineEntry(BaseModel):
    """One status range ``[startDate, endDate)`` as the timeline keeps it (``endDate`` null = open)."""

    entryId: str | None
    status: str
    isActiveMember: bool
    activeFrom: Literal["given", "status-name"] = Field(
        description="given by Lära, or derived from the status name (the seed's rule for a null isActiveMember)"
    )
    startDate: datetime
    endDate: datetime | None


# ---- lara.statuses.feed (key: member) ----------------------------------------------------------------------
class MemberRecord(BaseModel):
    """A member record after stage one: how the member is named, and the record's event id (sha256 of type
    and body)."""

    eventId: str
    memberKey: str = Field(description="userId, or customFieldAPIName:customFieldValue")
    userId: str | None
    customFieldAPIName: str | None
    customFieldValue: str | None


class MemberStatusesRecord(MemberRecord):
    """Every status range of the member: replaces the timeline."""

    type: Literal["member_statuses"]
    statuses: list[TimelineEntry]


class MemberStatusUpdateRecord(MemberRecord):
    """One range, named by ``entryId``, set to ``status``."""

    type: Literal["member_status_update"]
    entryId: str
    status: TimelineEntry


class MemberStatusChangeRecord(MemberRecord):
    """Close the member's active range where ``status`` starts, and open ``status``."""

    type: Literal["member_status_change"]
    status: TimelineEntry


# ---- lara.identities.feed (key: customFieldAPIName:customFieldValue) ------------------------------------------
class IdentityRecord(BaseModel):
    """A member record that names a custom field, for the identity table: with ``userId`` it links the custom
    field to that user; without, it is forwarded to the user once linked, else kept unresolved."""

    eventId: str = Field(description="the record's event id (as ``record.eventId``)")
    customKey: str = Field(description="customFieldAPIName:customFieldValue")
    userId: str | None = Field(
        description="the user the record names too, which links the custom field to it"
    )
    record: MemberStatusesRecord | MemberStatusUpdateRecord | MemberStatusChangeRecord


# ---- lara.cycles.feed (key: cycle id) ----------------------------------------------------------------------
class CycleRecord(BaseModel):
    """A training cycle, with its display name picked by language preference and every name by language tag."""

    type: Literal["cycle"]
    eventId: str
    cycleId: str
    adminName: str | None
    name: str | None
    names: dict[str, str] = Field(description="BCP 47 language tag -> name")
    ruleId: str | None
    isActive: bool | None
    isDeleted: bool | None


class RequirementRecord(BaseModel):
    id: str
    cyclePeriodId: str | None
    type: RequirementType
    typeName: Literal["credits", "training-types", "categories"]
    targetValue: Credits
    parentId: str | None
    ruleId: str | None
    providerId: str | None


class PeriodRecord(BaseModel):
    """A period of a cycle, with its computed end and whether it is current at processing time."""

    type: Literal["period"]
    eventId: str
    cyclePeriodId: str
    cycleId: str
    adminName: str | None
    startDate: datetime | None
    endDate: datetime | None = Field(
        description="startDate + duration x durationUnit (calendar months/years)"
    )
    duration: int | None
    durationUnit: DurationUnit | None
    durationUnitName: Literal["hours", "days", "weeks", "months", "years"] | None
    isCurrent: bool | None
    isRequirementsShown: bool | None
    ruleId: str | None
    isUserStatement: bool | None
    isActive: bool | None
    isDeleted: bool | None
    creditTarget: Credits = Field(description="the largest credit requirement's target, if any")
    requirements: list[RequirementRecord]


class ProgressRecord(BaseModel):
    """A member's credits in a cycle, with the progress against the requirement."""

    type: Literal["user_progress"]
    eventId: str
    cycleId: str
    memberId: str
    customFieldAPIName: str | None
    requiredCredits: Credits
    completedCredits: Credits
    exemptedCredits: Credits
    providerCredits: Credits
    earnedCredits: float = Field(description="completed + exempted (unreported credits count as zero)")
    remainingCredits: Credits
    progressPercent: Credits
    meetsRequirement: bool | None


# ---- lara.compliance.feed (key: member) --------------------------------------------------------------------
class TimelineMessage(BaseModel):
    """The member's timeline after a change; ``revision`` counts changes, so a late older one is ignored."""

    kind: Literal["timeline"]
    memberKey: str
    revision: int
    entries: list[TimelineEntry]


class CycleFields(BaseModel):
    name: str | None
    names: dict[str, str]
    adminName: str | None
    isActive: bool | None
    isDeleted: bool | None


class PeriodSummary(BaseModel):
    cyclePeriodId: str
    adminName: str | None
    startDate: datetime | None
    endDate: datetime | None
    creditTarget: Credits
    isActive: bool | None
    isDeleted: bool | None


class CycleMessage(BaseModel):
    """A cycle (or one of its periods) changed: the cycle and its periods, sent to every member following it;
    ``seq`` counts the cycle's changes."""

    kind: Literal["cycle"]
    memberKey: str
    cycleId: str
    seq: int
    cycle: CycleFields | None
    periods: list[PeriodSummary]


class ProgressCredits(BaseModel):
    requiredCredits: Credits
    completedCredits: Credits
    exemptedCredits: Credits
    providerCredits: Credits


class ProgressMessage(BaseModel):
    """A member's progress in a cycle, joined with the cycle and its periods."""

    kind: Literal["progress"]
    memberKey: str
    cycleId: str
    seq: int
    cycle: CycleFields | None
    periods: list[PeriodSummary]
    progress: ProgressCredits


# ---- lara.compliance (compacted, key: member) --------------------------------------------------------------
class CycleCompliance(BaseModel):
    """One cycle the member follows: its current period and the credits against the requirement."""

    cycleId: str
    cycleName: str | None
    cycleLive: bool = Field(description="neither inactive nor deleted")
    currentPeriod: PeriodSummary | None
    requiredCredits: Credits
    requirementSource: Literal["user_progress", "period"] | None
    completedCredits: Credits
    exemptedCredits: Credits
    earnedCredits: Credits
    remainingCredits: Credits
    progressPercent: Credits
    compliant: bool | None


class Compliance(BaseModel):
    """A member's compliance as of their last change: active now, current status, and per cycle whether the
    credit requirement is met. Also what ``GET /api/lara/members/{id}/compliance`` answers (computed at the
    time of the request there)."""

    memberKey: str
    identity: Literal["user", "unresolved"] = Field(
        description="user: keyed by the Lära user; unresolved: known by custom field only, no record has linked it "
        "to a user yet, so credits (which name the user) cannot be joined"
    )
    activeNow: bool | None = Field(
        description="null when no status is known; else true when some range covers now and none of those is "
        "inactive (a concurrent suspension without isActiveMember is active, as the seed lists it)"
    )
    currentStatus: TimelineEntry | None = Field(description="the latest-starting range that covers now")
    currentStatuses: list[TimelineEntry] = Field(description="every range that covers now, in time order")
    cycles: list[CycleCompliance]
    compliant: bool | None = Field(
        description="null until some live cycle has a verdict, then true only when every such verdict is met"
    )
