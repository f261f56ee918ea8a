"""What Vome publishes downstream, as models: their JSON Schemas are what ``switchyard asyncapi`` tells the
consumers of ``vome.bookings|profiles|forms|sequences`` and ``vome.volunteers``.

Stage one and the ``volunteers`` fold build these values as plain dicts (:func:`~app.domains.vome.enrich.enrich`,
:func:`~app.domains.vome.state.snapshot`), so nothing at run time uses these classes; ``tests/unit/test_asyncapi.py``
holds them to the code by validating every value the rules emit for the seed samples and generated traffic
against the published schema, fields the models do not name included. ``data`` is typed by
:func:`~app.domains.vome.privacy.allowed_schema`: the seed schema cut down to the allow-list, so the document
cannot promise a field that never leaves ``vome.raw``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, WithJsonSchema

from app.domains.vome.privacy import allowed_schema


class Projection(BaseModel):
    """What every projection carries: the delivery's event id (sha256 of trigger and body), its trigger and
    family, the volunteer (the Kafka key) and the entity the delivery is about."""

    event_id: str
    trigger: str
    user_id: str
    entity_id: str


class Onboarding(BaseModel):
    steps_done: int
    steps_total: int


class BookingProjection(Projection):
    """``vome.bookings``: a booking of a shift; ``hours`` = approved hours (None until approved with both
    check-in and check-out times)."""

    family: Literal["booking"]
    hours_approved: bool
    hours: float | None
    data: Annotated[dict[str, Any], WithJsonSchema(allowed_schema("booking"))]


class ProfileProjection(Projection):
    """``vome.profiles``: a volunteer profile (``archived`` after ``profile.archived``)."""

    family: Literal["profile"]
    archived: bool
    data: Annotated[dict[str, Any], WithJsonSchema(allowed_schema("profile"))]


class FormProjection(Projection):
    """``vome.forms``: a form submission, with how many of its questions were answered (not the answers)."""

    family: Literal["form_submission"]
    questions_total: int
    questions_answered: int
    data: Annotated[dict[str, Any], WithJsonSchema(allowed_schema("form_submission"))]


class SequenceProjection(Projection):
    """``vome.sequences``: an onboarding sequence assignment, with the steps done of the steps it has."""

    family: Literal["sequence_assignment"]
    onboarding: Onboarding
    data: Annotated[dict[str, Any], WithJsonSchema(allowed_schema("sequence_assignment"))]


class LatestForm(BaseModel):
    submission_id: str
    form_id: str | None
    status: str | None
    submitted_at: datetime | None


class OnboardingTotals(BaseModel):
    """Over every live sequence assignment of the volunteer."""

    assignments: int
    steps_done: int
    steps_total: int


class VolunteerSnapshot(BaseModel):
    """``vome.volunteers`` (compacted, key Vome user id): the CRM-facing state of one volunteer, also what
    ``GET /api/vome/volunteers/{userId}`` answers."""

    user_id: str
    has_profile: bool
    archived: bool
    bookings_count: int
    latest_form: LatestForm | None
    onboarding: OnboardingTotals
    updated_at: datetime | None
