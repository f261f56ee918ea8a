"""What Switchyard adds to a Lära record: period ends, member activity, names per language, credit progress.

Every function is pure; ``now`` is passed in where the answer depends on it.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app.core.clock import iso
from app.core.errors import EnrichError
from app.domains.lara.checks import check_range, check_statuses, normalise_id
from app.domains.lara.models import (
    CREDITS,
    DURATION_UNITS,
    LANGUAGES,
    REQUIREMENT_TYPES,
    Cycle,
    LocalizedText,
    MemberStatusChange,
    MemberStatuses,
    MemberStatusUpdate,
    NamedUser,
    Period,
    StatusRange,
    UserProgress,
)

#: Status names that make a member active when ``isActiveMember`` is null, as the seed lists them (accents as
#: written: "1ère inscription" does not match "1ere inscription").
ACTIVE_STATUS_NAMES = frozenset(
    {
        "membre",
        "member",
        "1ère inscription",
        "inscription",
        "temporaire",
        "limitation du droit d'exercice",
        "suspension du droit d'exercice",
        "autorisation spéciale",
    }
)

#: The language a single display name is taken from when several are given: the seed's order of languageId.
LANGUAGE_PREFERENCE: tuple[str, ...] = tuple(LANGUAGES[i] for i in sorted(LANGUAGES))


def is_active_status_name(name: str) -> bool:
    """The seed's rule for a null ``isActiveMember``: the name is in its list, ignoring case and surrounding
    spaces (``casefold`` so that "MEMBRE" and "Membre " match)."""
    return name.strip().casefold() in ACTIVE_STATUS_NAMES


def add_months(start: datetime, months: int) -> datetime:
    """``start`` plus calendar months. A day that the target month lacks is clamped to its last day
    (31 January + 1 month = 28 or 29 February; 29 February + 1 year = 28 February), as calendars and
    .NET's ``AddMonths`` do; the time of day is kept."""
    index = start.year * 12 + start.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def period_end(start: datetime, duration: int, unit: int) -> datetime:
    """Start + duration x unit (0 hours, 1 days, 2 weeks, 3 calendar months, 4 calendar years)."""
    if unit == 0:
        return start + timedelta(hours=duration)
    if unit == 1:
        return start + timedelta(days=duration)
    if unit == 2:
        return start + timedelta(weeks=duration)
    if unit == 3:
        return add_months(start, duration)
    if unit == 4:
        return add_months(start, 12 * duration)
    raise ValueError(f"durationUnit {unit} is not one of the seed's units")


def names(texts: Sequence[LocalizedText]) -> dict[str, str]:
    """languageId -> language tag; a language given twice keeps its last text, as a later edit would."""
    return {LANGUAGES[t.languageId]: t.text for t in texts}


def display_name(by_language: dict[str, str]) -> str | None:
    return next((by_language[tag] for tag in LANGUAGE_PREFERENCE if tag in by_language), None)


def _opt_iso(at: datetime | None) -> str | None:
    return iso(at) if at is not None else None


def enrich_cycle(cycle: Cycle) -> dict[str, Any]:
    by_language = names(cycle.name.texts) if cycle.name is not None else {}
    return {
        "cycleId": cycle.cycleId,
        "adminName": cycle.adminName,
        "name": display_name(by_language),
        "names": by_language,
        "ruleId": cycle.ruleId,
        "isActive": cycle.isActive,
        "isDeleted": cycle.isDeleted,
    }


def credit_target(period: Period) -> float | None:
    """The credits a period requires: the largest credit requirement (a sub-requirement, ``parentId``, never
    asks more than its parent), or None when the period has no credit requirement with a target."""
    targets = [r.targetValue for r in period.requirements if r.type == CREDITS and r.targetValue is not None]
    return max(targets) if targets else None


def enrich_period(period: Period, now: datetime) -> dict[str, Any]:
    end = None
    if period.startDate is not None and period.duration is not None and period.durationUnit is not None:
        try:
            end = period_end(period.startDate, period.duration, period.durationUnit)
        except (OverflowError, ValueError):  # a duration past year 9999: no date can say when it ends
            raise EnrichError(
                "period end is beyond the last representable date", code="ENRICH-PERIOD-END", path="/duration"
            ) from None
    current = None
    if period.startDate is not None and end is not None:
        current = period.startDate <= now < end
    return {
        "cyclePeriodId": period.cyclePeriodId,
        "cycleId": period.cycleId,
        "adminName": period.adminName,
        "startDate": _opt_iso(period.startDate),
        "endDate": _opt_iso(end),
        "duration": period.duration,
        "durationUnit": period.durationUnit,
        "durationUnitName": DURATION_UNITS[period.durationUnit] if period.durationUnit is not None else None,
        "isCurrent": current,
        "isRequirementsShown": period.isRequirementsShown,
        "ruleId": period.ruleId,
        "isUserStatement": period.isUserStatement,
        "isActive": period.isActive,
        "isDeleted": period.isDeleted,
        "creditTarget": credit_target(period),
        "requirements": [
            {
                "id": r.id,
                "cyclePeriodId": r.cyclePeriodId,
                "type": r.type,
                "typeName": REQUIREMENT_TYPES[r.type],
                "targetValue": r.targetValue,
                "parentId": r.parentId,
                "ruleId": r.ruleId,
                "providerId": r.providerId,
            }
            for r in period.requirements
        ],
    }


def credit_progress(
    required: float | None, completed: float | None, exempted: float | None
) -> dict[str, Any]:
    """(completed + exempted) against ``required``: percent clamped to [0, 100], remaining never negative.

    Credits Lära does not report count as zero. Without a requirement there is no progress to state (None);
    a requirement of zero is met (100 %).
    """
    earned = (completed or 0.0) + (exempted or 0.0)
    if required is None:
        return {
            "earnedCredits": earned,
            "remainingCredits": None,
            "progressPercent": None,
            "meetsRequirement": None,
        }
    percent = 100.0 if required == 0 else min(100.0, max(0.0, 100.0 * earned / required))
    return {
        "earnedCredits": earned,
        "remainingCredits": max(0.0, required - earned),
        "progressPercent": round(percent, 2),
        "meetsRequirement": earned >= required,
    }


def enrich_progress(progress: UserProgress) -> dict[str, Any]:
    return {
        "cycleId": progress.id,
        "memberId": progress.memberId,
        "customFieldAPIName": progress.customFieldAPIName,
        "requiredCredits": progress.requiredCredits,
        "completedCredits": progress.completedCredits,
        "exemptedCredits": progress.exemptedCredits,
        "providerCredits": progress.providerCredits,
        **credit_progress(progress.requiredCredits, progress.completedCredits, progress.exemptedCredits),
    }


def enrich_status(status: StatusRange) -> dict[str, Any]:
    """One status range as the timeline stores it; ``activeFrom`` says whether Lära gave the activity or the
    seed's status-name rule derived it."""
    given = status.isActiveMember is not None
    return {
        "entryId": status.entryId,
        "status": status.status,
        "isActiveMember": status.isActiveMember if given else is_active_status_name(status.status),
        "activeFrom": "given" if given else "status-name",
        "startDate": iso(status.startDate),
        "endDate": _opt_iso(status.endDate),
    }


def _member(model: NamedUser, key: str) -> dict[str, Any]:
    return {
        "memberKey": key,
        # the getmemberstatuses response names its user on each status only
        "userId": model.userId or (key if normalise_id(key) is not None else None),
        "customFieldAPIName": model.customFieldAPIName,
        "customFieldValue": model.customFieldValue,
    }


def _statuses(model: MemberStatuses) -> list[dict[str, Any]]:
    check_statuses(model)
    return [enrich_status(s) for s in model.statuses]


def enrich(event_type: str, model: Any, key: str | None, now: datetime) -> tuple[dict[str, Any], str]:
    """The enriched body of a validated record and its key (``key``: the member key, for member records); the
    rules across fields that need the model (LARA-1010, LARA-1008) run here, on the way."""
    if isinstance(model, Cycle):
        return enrich_cycle(model), model.cycleId
    if isinstance(model, Period):
        return enrich_period(model, now), model.cycleId
    if isinstance(model, UserProgress):
        return enrich_progress(model), model.memberId
    assert key is not None
    if isinstance(model, MemberStatuses):
        return {**_member(model, key), "statuses": _statuses(model)}, key
    if isinstance(model, MemberStatusUpdate):
        check_range(model.status, "/status")
        return {**_member(model, key), "entryId": model.entryId, "status": enrich_status(model.status)}, key
    if isinstance(model, MemberStatusChange):
        check_range(model.status, "/status")
        return {**_member(model, key), "status": enrich_status(model.status)}, key
    raise AssertionError(f"no enrichment for {event_type}")
