"""Triggers, families and the derived values Vome's CRM sync needs: approved hours and onboarding progress.

Everything here is a pure function of a validated payload; the enriched record is the family's allow-listed
projection (:mod:`app.domains.vome.privacy`) plus what is derived, so nothing outside the allow-list can reach
it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from app.core.errors import EnrichError
from app.domains.vome.models import (
    Booking,
    FormSubmission,
    Payload,
    Profile,
    SequenceAssignment,
    Step,
    user_id,
)
from app.domains.vome.privacy import ALLOW, project

Family = Literal["booking", "profile", "form_submission", "sequence_assignment"]

TRIGGERS: tuple[str, ...] = (
    "booking.created",
    "booking.updated",
    "booking.deleted",
    "profile.created",
    "profile.updated",
    "profile.archived",
    "profile.deleted",
    "form_submission.created",
    "form_submission.updated",
    "form_submission.deleted",
    "sequence_assignment.created",
    "sequence_assignment.updated",
    "sequence_assignment.deleted",
)

MODELS: Mapping[Family, type[Payload]] = {
    "booking": Booking,
    "profile": Profile,
    "form_submission": FormSubmission,
    "sequence_assignment": SequenceAssignment,
}

#: Statuses Vome reports for a finished orientation or interview, compared without case or surrounding spaces.
DONE_STATUSES: frozenset[str] = frozenset({"completed", "complete", "done", "passed"})


def family_of(trigger: str) -> Family:
    family = trigger.split(".", 1)[0]
    if family == "booking":
        return "booking"
    if family == "profile":
        return "profile"
    if family == "form_submission":
        return "form_submission"
    return "sequence_assignment"


def approved_hours(booking: Booking) -> float | None:
    """Departure minus arrival in hours (2 decimals), only once someone approved them (``hours_approved_by``).

    Approved hours without both times are unknown (None), not zero. A departure before the arrival is a broken
    record, not zero hours: it is dead-lettered so someone fixes it in Vome.
    """
    if not booking.hours_approved_by or booking.arrival_time is None or booking.departure_time is None:
        return None
    seconds = (booking.departure_time - booking.arrival_time).total_seconds()
    if seconds < 0:
        raise EnrichError(
            "departure_time is before arrival_time", code="ENRICH-NEGATIVE-HOURS", path="/departure_time"
        )
    return round(seconds / 3600, 2)


def step_done(step: Step) -> bool:
    """A step is done when it has orientations or interviews and every one of them reports a done status.

    Steps of other kinds carry no per-user status in the payload, so they can never be shown as done; they
    still count towards the total, which keeps the CRM from over-reporting progress.
    """
    statuses = [
        d.user_orientation.status if d.user_orientation else None for d in step.orientation_details or []
    ]
    statuses += [d.user_interview.status if d.user_interview else None for d in step.interview_details or []]
    return bool(statuses) and all(s is not None and s.strip().lower() in DONE_STATUSES for s in statuses)


def onboarding(assignment: SequenceAssignment) -> tuple[int, int]:
    """(steps done, steps total) of the assigned sequence."""
    info = assignment.sequence_info
    steps = (info.step_info or []) if info is not None else []
    return sum(1 for s in steps if step_done(s)), len(steps)


def event_time(trigger: str, payload: Payload) -> datetime | None:
    """When the event happened, where the payload says so; None lets the runtime use the record's timestamp.

    Only creations (``created_at``) and sequence updates (``updated_at``) carry their own time: a booking,
    profile or submission keeps its creation time through later updates and deletions, which would make
    every later event look months late.
    """
    if isinstance(payload, SequenceAssignment) and trigger.endswith(".updated"):
        return payload.updated_at
    if not trigger.endswith(".created"):
        return None
    if isinstance(payload, Profile):
        return payload.profile_details.created_at if payload.profile_details else None
    return payload.created_at


def enrich(trigger: str, payload: Payload, event_id: str) -> dict[str, Any]:
    """The record on the family's topic: the allow-listed projection under ``data``, plus derived values."""
    family = family_of(trigger)
    out: dict[str, Any] = {
        "event_id": event_id,
        "trigger": trigger,
        "family": family,
        "user_id": user_id(payload),
        "entity_id": payload.id,
    }
    if isinstance(payload, Booking):
        hours = approved_hours(payload)
        out["hours_approved"] = bool(payload.hours_approved_by)
        out["hours"] = hours
    elif isinstance(payload, FormSubmission):
        questions = payload.questions or []
        out["questions_total"] = len(questions)
        out["questions_answered"] = sum(1 for q in questions if q.responded)
    elif isinstance(payload, SequenceAssignment):
        done, total = onboarding(payload)
        out["onboarding"] = {"steps_done": done, "steps_total": total}
    elif isinstance(payload, Profile):
        out["archived"] = trigger == "profile.archived"
    out["data"] = project(payload.model_dump(mode="json"), ALLOW[family])
    return out
