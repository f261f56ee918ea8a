"""The two Phoenix snapshots as published, as models: their JSON Schemas are what ``switchyard asyncapi`` tells
downstream consumers of ``phoenix.talent-progress`` and ``phoenix.coach-activity``.

The folds build these values as plain dicts (:mod:`app.domains.phoenix.state`), so nothing at run time uses these
classes; ``tests/unit/test_asyncapi.py`` holds them to the code by validating every snapshot the folds emit for
the seed samples and generated traffic against the published schema, fields the models do not name included.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class BlockDone(BaseModel):
    """A program block the talent finished (a block may take two sessions: PART_ONE and PART_TWO)."""

    talentBlockId: str | None
    blockId: str | None
    order: int | None
    sessions: int
    lastSessionAt: datetime | None


class CurrentPhase(BaseModel):
    """The phase of the program's most recent done session."""

    talentPhaseId: str | None
    phaseId: str | None
    order: int | None


class ProgramProgress(BaseModel):
    """One program's done sessions, blocks done in block order, and the current phase."""

    sessionsDone: int
    blocksDone: list[BlockDone]
    currentPhase: CurrentPhase | None


class TalentProgress(BaseModel):
    """A talent's progress through their programs, counting each appointment once at its latest version
    (``phoenix.talent-progress``, key talentId)."""

    talentId: str
    sessionsDone: int
    sessionsCanceled: int
    sessionsPlanned: int
    canceledByReason: dict[str, int] = Field(
        description="cancelationReason (UNSPECIFIED when Phoenix gave none) -> canceled sessions"
    )
    minutesInSession: float
    firstSessionAt: datetime | None
    lastSessionAt: datetime | None
    programs: dict[str, ProgramProgress]


class CoachWeek(BaseModel):
    """Done sessions in one ISO week (``week`` is ``YYYY-Www``, ``weekStart`` its Monday)."""

    week: str
    weekStart: date
    sessionsDone: int


class CoachActivity(BaseModel):
    """A coach's done sessions per ISO week over the last ``retentionWeeks`` weeks up to the latest week seen
    (``phoenix.coach-activity``, key coachId)."""

    coachId: str
    retentionWeeks: int
    latestWeek: str | None
    latestWeekStart: date | None
    sessionsDone: int
    weeks: list[CoachWeek]
