"""The ``POST Appointment`` webhook (seed ``003_7cfa94b6317476cc.txt``) as pydantic v2 models.

The seed is a rendered API reference: its bullet lists give limits, enums and "Additional properties are NOT
allowed" without naming the field they apply to. Each bullet describes the field at the same position in the
seed's example, and an object's own "additional properties" bullet sits just before its "Hide <name>
attributes" heading. Read that way, the bullets map onto fields as follows (the same in every status group):

==================================================  =====================================================
seed bullet (in order)                              field
==================================================  =====================================================
entity ``Value is Appointment``                     ``entity``
"Additional properties are allowed" (top)           ``data`` (the envelope is open too: the seed never
                                                    closes it)
subject: max 255 / minimum 0                        ``subject.externalId`` / ``subject.order``
office: max 255                                     ``office.externalId``
location: min 2, max 2                              ``location.countryCode`` (office, appointment,
                                                    listing, customer, previousAppointment)
participant: max 2000, max 2000                     ``videoUrl``, ``videoTestUrl``
employee: 320, 320, 255, 2                          ``communicationEmail``, ``email``, ``externalId``,
                                                    ``language``
employee enum ADMIN...OFFICE_MANAGER                ``availableRoles[*]``
customer: minimum 0, 255, 320, 2                    ``customerNumber``, ``externalId``, ``email``,
                                                    ``language`` (the example has no customer: the
                                                    field names are inferred from the employee's)
listing: max 255                                    ``listing.externalId``
appointment: max 255 after meetingType              ``appointment.externalId``
"Additional properties are allowed" (appointment)   ``metadata`` (free-form)
previousAppointment: max 255                        ``previousAppointment.externalId``
==================================================  =====================================================

Objects the seed closes (``extra="forbid"``): subject, subjectGroup, every ``translations`` object, office,
every location and its geolocation, employee, customer, answer form and question, listing, leadSegment,
meetingRoom, and previousAppointment's subject/office/listing/leadSegment. The seed says nothing about the
envelope, the appointment itself, participants, answers and translation entries, so those stay open: JSON
Schema's default, and the upstream may add fields there without its webhooks being dead-lettered.

The seed's ``oneOf`` status groups (ACCEPTED/COMPLETED/NO_SHOW/CANCELLED | INCOMING_REQUEST |
OUTGOING_INVITE/ALTERNATIVE_DATE_REQUESTED) have identical shapes and differ in ``status`` only, so one model
with the union of the three enums accepts exactly what the ``oneOf`` accepts; :func:`status_group` names the
group. Participants (``oneOf`` on ``type``) are one model too: the two shapes differ only in carrying an
``employee`` or a ``customer`` object, and a pydantic tagged union would put the tag into the error path.

Deviations, each deliberate:

- ``callbackRequest`` is marked Required (after ``answers``), but the seed's own example omits it and gives no
  type: it is optional here (a boolean), so the seed example is accepted.
- Switchyard needs some fields the seed does not mark required: the envelope ``id`` (the event id used for
  dedupe), ``data``, and the appointment's ``id`` (the Kafka key), ``start``, ``end``, ``createdAt`` and
  ``updatedAt`` (enrichment and the stale-update rule). Missing, they are ``SCHEMA-REQUIRED``.
- Optional fields accept ``null``: the seed marks a few as ``string | null`` and leaves others unstated, and
  the upstream serialises unset values as null.
- Timestamps must carry an offset (``SCHEMA-FORMAT`` otherwise): durations and the stale rule compare them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from pydantic_core import PydanticCustomError

EventType = Literal[
    "ACCEPT",
    "REASSIGN",
    "CANCEL",
    "COMPLETE",
    "CREATE",
    "RESCHEDULE",
    "REQUEST_ALTERNATIVE_DATE",
    "CREATE_REQUEST",
    "RESCHEDULE_REQUEST",
    "REOPEN",
    "GENERIC_UPDATE",
]
ConfirmedStatus = Literal["ACCEPTED", "COMPLETED", "NO_SHOW", "CANCELLED"]
IncomingStatus = Literal["INCOMING_REQUEST"]
OutgoingStatus = Literal["OUTGOING_INVITE", "ALTERNATIVE_DATE_REQUESTED"]
AppointmentStatus = Literal[
    "ACCEPTED",
    "COMPLETED",
    "NO_SHOW",
    "CANCELLED",
    "INCOMING_REQUEST",
    "OUTGOING_INVITE",
    "ALTERNATIVE_DATE_REQUESTED",
]
StatusGroup = Literal["confirmed", "incoming", "outgoing"]
ParticipantRole = Literal["PRIMARY", "SECONDARY"]
ParticipantType = Literal["EMPLOYEE", "CUSTOMER"]
EmployeeRole = Literal["ADMIN", "AGENT", "CENTRAL_PLANNER", "OFFICE_MANAGER"]
EmployeeStatus = Literal["ACTIVE", "SUSPENDED", "PENDING"]
AnswerType = Literal[
    "SUBJECT_QUESTIONNAIRE", "APPOINTMENT_CANCELLATION", "APPOINTMENT_COMPLETION", "QUALIFICATION"
]
MeetingType = Literal["OFFICE", "ON_LOCATION", "PHONE", "VIDEO"]
ActorType = Literal["CUSTOMER", "EMPLOYEE", "OTHER"]
Channel = Literal["PLUGIN", "BACKOFFICE_APP", "PARTNER_BOOKING_APP", "OTHER"]

EVENT_TYPES: tuple[str, ...] = get_args(EventType)
STATUSES: tuple[str, ...] = get_args(AppointmentStatus)
_GROUPS: dict[str, StatusGroup] = {
    **dict.fromkeys(get_args(ConfirmedStatus), "confirmed"),
    **dict.fromkeys(get_args(IncomingStatus), "incoming"),
    **dict.fromkeys(get_args(OutgoingStatus), "outgoing"),
}


def status_group(status: str) -> StatusGroup:
    """Which of the seed's three ``oneOf`` alternatives a status belongs to."""
    return _GROUPS[status]


def _timestamp(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("datetime_parsing", "Input should be an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        raise PydanticCustomError("timezone_aware", "Input should have a time-zone offset")
    return parsed


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
ExternalId = Annotated[StrictStr, Field(max_length=255)]
Email = Annotated[StrictStr, Field(max_length=320)]
Url = Annotated[StrictStr, Field(max_length=2000)]
Language = Annotated[StrictStr, Field(max_length=2)]
CountryCode = Annotated[StrictStr, Field(min_length=2, max_length=2)]
Order = Annotated[StrictInt, Field(ge=0)]

_CLOSED = ConfigDict(extra="forbid", strict=True, frozen=True)
_OPEN = ConfigDict(extra="ignore", strict=True, frozen=True)


class Translation(BaseModel):
    model_config = _OPEN

    value: StrictStr
    language: StrictStr


Translations = list[Translation] | None


class NameTranslations(BaseModel):
    model_config = _CLOSED

    name: Translations = None


class SubjectTranslations(BaseModel):
    model_config = _CLOSED

    name: Translations = None
    description: Translations = None
    instructions: Translations = None


class OfficeTranslations(BaseModel):
    model_config = _CLOSED

    name: Translations = None
    description: Translations = None
    directions: Translations = None
    parkingInfo: Translations = None


class ListingTranslations(BaseModel):
    model_config = _CLOSED

    name: Translations = None
    description: Translations = None


class AddressTranslations(BaseModel):
    model_config = _CLOSED

    city: Translations = None
    street1: Translations = None
    street2: Translations = None
    state: Translations = None


class FunctionTranslations(BaseModel):
    model_config = _CLOSED

    function: Translations = None


class LabelTranslations(BaseModel):
    model_config = _CLOSED

    label: Translations = None


class Geolocation(BaseModel):
    model_config = _CLOSED

    latitude: float | None = None
    longitude: float | None = None


class Location(BaseModel):
    model_config = _CLOSED

    postalCode: StrictStr | None = None
    countryCode: CountryCode | None = None
    geolocation: Geolocation | None = None
    translations: AddressTranslations | None = None


class SubjectGroup(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    externalId: StrictStr | None = None
    order: StrictInt | None = None
    color: StrictStr | None = None
    image: StrictStr | None = None
    translations: NameTranslations | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class Subject(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    externalId: ExternalId | None = None
    enabledForCustomerUse: StrictBool | None = None
    enabledForInternalUse: StrictBool | None = None
    order: Order | None = None
    cancellationByAgentFormId: StrictStr | None = None
    cancellationByCustomerFormId: StrictStr | None = None
    completionByAgentFormId: StrictStr | None = None
    questionnaireFormId: StrictStr | None = None
    subjectGroup: SubjectGroup | None = None
    translations: SubjectTranslations | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class Office(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    active: StrictBool | None = None
    email: StrictStr | None = None
    externalId: ExternalId | None = None
    phoneNumber: StrictStr | None = None
    timeZone: StrictStr | None = None
    usesIndependentAgents: StrictBool | None = None
    virtual: StrictBool | None = None
    location: Location | None = None
    translations: OfficeTranslations | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class Employee(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    communicationEmail: Email | None = None
    email: Email | None = None
    externalId: ExternalId | None = None
    firstName: StrictStr | None = None
    language: Language | None = None
    lastName: StrictStr | None = None
    onlinePlanning: StrictBool | None = None
    phoneNumber: StrictStr | None = None
    profilePictureUrl: StrictStr | None = None
    staticVideoUrl: StrictStr | None = None
    translations: FunctionTranslations | None = None
    availableRoles: list[EmployeeRole] | None = None
    status: EmployeeStatus
    timeZone: StrictStr | None = None
    userId: StrictStr | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class Customer(BaseModel):
    """Not in the seed's example: fields named after the employee's, limits in the seed's order."""

    model_config = _CLOSED

    id: StrictStr | None = None
    customerNumber: Order | None = None
    externalId: ExternalId | None = None
    email: Email | None = None
    language: Language | None = None
    firstName: StrictStr | None = None
    lastName: StrictStr | None = None
    company: StrictStr | None = None
    phoneNumber: StrictStr | None = None
    timeZone: StrictStr | None = None
    location: Location | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class Participant(BaseModel):
    """Either ``oneOf`` alternative: ``type`` says which of ``employee`` / ``customer`` is the person."""

    model_config = _OPEN

    role: ParticipantRole
    type: ParticipantType
    token: StrictStr | None = None
    videoUrl: Url | None = None
    videoTestUrl: Url | None = None
    cancelUrl: StrictStr | None = None
    editUrl: StrictStr | None = None
    inviteUrl: StrictStr | None = None
    office365CalendarUrl: StrictStr | None = None
    googleCalendarUrl: StrictStr | None = None
    icalUrl: StrictStr | None = None
    createdAt: Timestamp | None = None
    employee: Employee | None = None
    customer: Customer | None = None


class FormRef(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None


class Question(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    externalId: StrictStr | None = None
    order: StrictInt | None = None
    translations: LabelTranslations | None = None


class AnswerOption(BaseModel):
    model_config = _OPEN

    id: StrictStr | None = None
    externalId: StrictStr | None = None
    value: StrictStr | None = None


class FileRef(BaseModel):
    model_config = _OPEN

    id: StrictStr | None = None


class Answer(BaseModel):
    model_config = _OPEN

    id: StrictStr | None = None
    form: FormRef | None = None
    question: Question | None = None
    answerType: AnswerType
    value: StrictStr | None = None
    selectedAnswerOptions: list[AnswerOption] | None = None
    files: list[FileRef] | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class Listing(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    active: StrictBool | None = None
    externalId: ExternalId | None = None
    timeZone: StrictStr | None = None
    location: Location | None = None
    tags: list[StrictStr] | None = None
    translations: ListingTranslations | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None


class LeadSegment(BaseModel):
    """``id`` is an integer in the appointment's example and a string in previousAppointment's: both pass."""

    model_config = _CLOSED

    id: StrictInt | StrictStr | None = None
    active: StrictBool | None = None
    code: StrictStr | None = None
    description: StrictStr | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None
    deletedAt: StrictStr | None = None


class MeetingRoom(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None
    email: StrictStr | None = None
    externalId: StrictStr | None = None
    name: StrictStr | None = None
    provider: StrictStr | None = None
    createdAt: Timestamp | None = None
    updatedAt: Timestamp | None = None
    deletedAt: StrictStr | None = None


class Appointment(BaseModel):
    model_config = _OPEN

    id: StrictStr
    subject: Subject | None = None
    office: Office | None = None
    participants: list[Participant] | None = None
    answers: list[Answer] | None = None
    callbackRequest: StrictBool | None = None
    location: Location | None = None
    listing: Listing | None = None
    leadSegment: LeadSegment | None = None
    meetingType: MeetingType
    externalId: ExternalId | None = None
    hybrid: StrictBool | None = None
    trailingBufferTime: StrictInt | None = None
    internalNotes: StrictStr | None = None
    meetingRoom: MeetingRoom | None = None
    messageForCustomer: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    createdAt: Timestamp
    createdById: StrictStr | None = None
    createdByType: ActorType
    createdFrom: Channel
    updatedAt: Timestamp
    updatedById: StrictStr | None = None
    updatedByType: ActorType
    updatedFrom: Channel
    status: AppointmentStatus
    start: Timestamp
    end: Timestamp


class IdRef(BaseModel):
    model_config = _CLOSED

    id: StrictStr | None = None


class LeadSegmentRef(BaseModel):
    model_config = _CLOSED

    id: StrictInt | StrictStr | None = None


class PersonRef(BaseModel):
    model_config = _OPEN

    id: StrictStr | None = None


class PreviousParticipant(BaseModel):
    """The seed states no enum or requirement for previousAppointment's participants: only their shape."""

    model_config = _OPEN

    role: StrictStr | None = None
    type: StrictStr | None = None
    token: StrictStr | None = None
    videoUrl: StrictStr | None = None
    videoTestUrl: StrictStr | None = None
    employee: PersonRef | None = None
    customer: PersonRef | None = None


class PreviousAppointment(BaseModel):
    model_config = _OPEN

    subject: IdRef | None = None
    office: IdRef | None = None
    participants: list[PreviousParticipant] | None = None
    location: Location | None = None
    listing: IdRef | None = None
    leadSegment: LeadSegmentRef | None = None
    externalId: ExternalId | None = None
    status: AppointmentStatus
    start: Timestamp | None = None
    end: Timestamp | None = None


class AppointmentData(BaseModel):
    model_config = _OPEN

    eventType: EventType
    message: StrictStr | None = None
    appointment: Appointment
    previousAppointment: PreviousAppointment | None


class AppointmentWebhook(BaseModel):
    """The envelope. Event id = ``id``; Kafka key = ``data.appointment.id``."""

    model_config = _OPEN

    id: StrictStr = Field(min_length=1)
    correlationId: StrictStr | None = None
    webhookConfigurationId: StrictStr | None = None
    version: StrictStr | None = None
    entity: Literal["Appointment"]
    data: AppointmentData
