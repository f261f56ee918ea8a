"""The four Vome payload families, field for field as the seed's trigger tables list them.

The seed (a Power Automate connector) gives each field a path and a type and marks none required, forbids
nothing and states no enums or limits. So:

- *Extra fields are tolerated*: webhooks grow; unknown fields are ignored, never forwarded.
- *Types are strict*: a number sent as a string, a boolean sent as 0/1, a string sent as a number are errors.
  An integral float (``3.0``) counts as an integer, as it does for JSON Schema.
- *Optional means absent or null*: a check-in not made yet (``arrival_time``) or hours not approved
  (``hours_approved_by``) arrive as null in practice.
- *Two deliberate additions*: the entity ``id`` and the volunteer's id (``user.id`` / ``user_info.id``; a
  profile's own ``id`` is the user id) are required and non-empty, because every output, table and CRM command
  is keyed by them; and the timestamps Switchyard computes with (``*_at``, ``arrival_time``,
  ``departure_time``) must be RFC 3339 date-times with an offset, so hours and CRM dates are never guessed.

The families differ where the seed says so: ``gender`` is an integer on bookings and sequences but a string
on forms and profiles; ``address_coordinates`` is a list of strings on bookings and sequences, a string on
forms and an untyped list on profiles. ``schemas/vome/*.json`` transcribe the same tables for the contract
test.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

_RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})\Z"
)


def _rfc3339_text(value: Any) -> Any:
    """Only RFC 3339 text reaches pydantic's datetime parser, which alone would also take unix numbers."""
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be an RFC 3339 date-time string")
    if _RFC3339.match(value) is None:
        raise PydanticCustomError("datetime_parsing", "Input should be an RFC 3339 date-time with an offset")
    return value


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Timestamp = Annotated[AwareDatetime, Field(strict=False), BeforeValidator(_rfc3339_text)]
#: JSON numbers as the outputs can carry them: an integral float such as 1e23 would otherwise become an integer
#: that no JSON encoder downstream accepts (orjson stops at 64 bits), failing after validation instead of in it.
Integer = Annotated[int, BeforeValidator(_integral), Field(ge=-(2**63), le=2**63 - 1)]
#: Ids become CRM contact and activity ids, which hold at most 255 characters.
EntityId = Annotated[str, Field(min_length=1, max_length=255)]


class VomeModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


# ---- shared parts ------------------------------------------------------------------------------------------
class Volunteer(VomeModel):
    """The volunteer as bookings (``user``) and sequence assignments (``user_info``) carry it."""

    id: EntityId
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    gender: Integer | None = None
    address: str | None = None
    phone_number: str | None = None
    date_of_birth: str | None = None
    timezone: str | None = None
    address_coordinates: list[str] | None = None


class FormVolunteer(VomeModel):
    """The volunteer as form submissions carry it: ``gender`` and ``address_coordinates`` are strings here."""

    id: EntityId
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    gender: str | None = None
    address: str | None = None
    phone_number: str | None = None
    date_of_birth: str | None = None
    timezone: str | None = None
    address_coordinates: str | None = None


class Category(VomeModel):
    id: str | None = None
    title: str | None = None
    description: str | None = None


# ---- bookings ----------------------------------------------------------------------------------------------
class Shift(VomeModel):
    id: str | None = None
    created_at: Timestamp | None = None
    shift_start_at: Timestamp | None = None
    shift_end_at: Timestamp | None = None
    spots: Integer | None = None
    shift_title: str | None = None
    shift_description: str | None = None


class Opportunity(VomeModel):
    id: str | None = None
    status: str | None = None
    category: Category | None = None
    title: str | None = None
    description: str | None = None


class Booking(VomeModel):
    """A volunteer's booking of a shift (``booking.created|updated|deleted``)."""

    id: EntityId
    shift: Shift | None = None
    created_at: Timestamp | None = None
    status: Integer | None = None
    arrival_time: Timestamp | None = None
    departure_time: Timestamp | None = None
    hours_approved_by: str | None = None
    user: Volunteer
    opportunity: Opportunity | None = None


# ---- form submissions --------------------------------------------------------------------------------------
class Question(VomeModel):
    id: str | None = None
    title: str | None = None
    question_type: str | None = None
    options: list[str] | None = None


class QuestionAnswer(VomeModel):
    id: str | None = None
    question: Question | None = None
    answer: str | None = None
    options: list[str] | None = None
    responded: bool | None = None


class FormEmergencyContact(VomeModel):
    id: str | None = None
    name: str | None = None
    relationship: str | None = None
    phone_number: str | None = None


class DigitalConsent(VomeModel):
    id: str | None = None
    digital_consent_info: str | None = None
    attached_file: str | None = None
    consent_status: Integer | None = None


class Availability(VomeModel):
    id: str | None = None
    day: Integer | None = None
    availability: str | None = None


class AttachmentInfo(VomeModel):
    id: str | None = None
    title: str | None = None
    description: str | None = None


class Attachment(VomeModel):
    id: str | None = None
    document_file: str | None = None
    notes: str | None = None
    attachment_info: AttachmentInfo | None = None


class Folder(VomeModel):
    name: str | None = None


class Form(VomeModel):
    id: str | None = None
    title: str | None = None


class FormSubmission(VomeModel):
    """A volunteer's submission of a Vome form (``form_submission.created|updated|deleted``)."""

    id: EntityId
    user: FormVolunteer
    submission_status: str | None = None
    created_at: Timestamp | None = None
    arrival_source: str | None = None
    questions: list[QuestionAnswer] | None = None
    medical_info: str | None = None
    emergency_contact: FormEmergencyContact | None = None
    digital_consent: list[DigitalConsent] | None = None
    general_availability: list[Availability] | None = None
    attachments: list[Attachment] | None = None
    opportunities: list[Any] | None = None
    folder: Folder | None = None
    form: Form | None = None


# ---- profiles ----------------------------------------------------------------------------------------------
class EmergencyContact(VomeModel):
    name: str | None = None
    phone_number: str | None = None
    relationship: str | None = None


class MedicalInformation(VomeModel):
    description: str | None = None
    has_medical_info: bool | None = None


class ProfileDetails(VomeModel):
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    email: str | None = None
    profile_image: str | None = None
    phone_number: str | None = None
    date_of_birth: str | None = None
    gender: str | None = None
    gender_text: str | None = None
    occupation: str | None = None
    occupation_institution_name: str | None = None
    skills: list[Any] | None = None
    languages: list[Any] | None = None
    address: str | None = None
    created_at: Timestamp | None = None
    age: str | None = None
    address_coordinates: list[Any] | None = None


class OpportunityCategory(VomeModel):
    id: str | None = None
    title: str | None = None


class OpportunityRef(VomeModel):
    id: str | None = None
    title: str | None = None
    category: OpportunityCategory | None = None


class ProfileOpportunity(VomeModel):
    id: str | None = None
    opportunity: OpportunityRef | None = None


class Tag(VomeModel):
    id: str | None = None
    tag_title: str | None = None


class ProfileTag(VomeModel):
    id: str | None = None
    tag: Tag | None = None


class CustomFieldOption(VomeModel):
    id: str | None = None
    value: str | None = None
    order: Integer | None = None


class CustomField(VomeModel):
    id: str | None = None
    field_type: Integer | None = None
    is_active: bool | None = None
    options: list[CustomFieldOption] | None = None


class CustomFieldValue(VomeModel):
    id: str | None = None
    value: CustomFieldOption | None = None


class ProfileCustomField(VomeModel):
    id: str | None = None
    custom_field: CustomField | None = None
    custom_field_value: list[CustomFieldValue] | None = None


class Profile(VomeModel):
    """A volunteer's profile (``profile.*``); its ``id`` is the Vome user id."""

    id: EntityId
    logged_hours: Integer | None = None
    is_offline: bool | None = None
    is_following: bool | None = None
    emergency_contact: EmergencyContact | None = None
    medical_information: MedicalInformation | None = None
    profile_details: ProfileDetails | None = None
    opportunities: list[ProfileOpportunity] | None = None
    most_recent_shift: str | None = None
    completed_shifts: Integer | None = None
    profile_tags: list[ProfileTag] | None = None
    custom_fields: list[ProfileCustomField] | None = None


# ---- sequence assignments ----------------------------------------------------------------------------------
class UserOrientation(VomeModel):
    status: str | None = None
    completion_on: str | None = None
    expiration_on: str | None = None


class OrientationDetail(VomeModel):
    title: str | None = None
    description: str | None = None
    user_orientation: UserOrientation | None = None


class UserInterview(VomeModel):
    interview: str | None = None
    status: str | None = None
    completion_on: str | None = None
    expiration_on: str | None = None


class InterviewDetail(VomeModel):
    title: str | None = None
    description: str | None = None
    user_interview: UserInterview | None = None


class Step(VomeModel):
    step: Integer | None = None
    type: str | None = None
    orientation_details: list[OrientationDetail] | None = None
    interview_details: list[InterviewDetail] | None = None


class SequenceInfo(VomeModel):
    id: str | None = None
    title: str | None = None
    description: str | None = None
    sequence_status: str | None = None
    display_status: str | None = None
    step_info: list[Step] | None = None


class SequenceAssignment(VomeModel):
    """A volunteer's assignment to an onboarding sequence (``sequence_assignment.*``)."""

    id: EntityId
    user_info: Volunteer
    sequence_info: SequenceInfo | None = None
    status: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


Payload = Booking | Profile | FormSubmission | SequenceAssignment


def user_id(payload: Payload) -> str:
    """The Vome user id every output of ``payload`` is keyed by."""
    if isinstance(payload, Profile):
        return payload.id
    if isinstance(payload, SequenceAssignment):
        return payload.user_info.id
    return payload.user.id
