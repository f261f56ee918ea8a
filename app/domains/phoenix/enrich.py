"""Enrichment of a validated ``VCSessionDoneEvent``: pure, with ``now`` injected.

Durations and delays are rounded to the millisecond, the precision Phoenix writes, so the same event enriched
twice (or by ``switchyard check``) gives byte-identical output.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ValidationError

from app.core.errors import EnrichError
from app.domains.phoenix.models import EnrichedSession, SessionDoneEnvelope, TalentBlock


def _seconds(later: datetime, earlier: datetime) -> float:
    return round((later - earlier).total_seconds(), 3)


def talent_block_of(raw: Any) -> TalentBlock | None:
    """The talent block, or None when Phoenix sent none or one of a shape this version does not know.

    The seed types ``talentBlock`` as "anything", so a shape we cannot read is not a reason to reject a
    session.
    """
    if not isinstance(raw, dict):
        return None
    try:
        return TalentBlock.model_validate(raw)
    except ValidationError:
        return None


def enrich(envelope: SessionDoneEnvelope, now: datetime) -> EnrichedSession:
    """Session duration, program/phase/block placement, processing delay and the cancelation facts.

    A session that ends before it starts is an upstream defect; dead-lettering it (ENRICH-NEGATIVE-DURATION)
    keeps a negative duration out of every talent's total minutes.
    """
    appt = envelope.eventData.appointment
    session_seconds: float | None = None
    if appt.startDate is not None and appt.endDate is not None:
        session_seconds = _seconds(appt.endDate, appt.startDate)
        if session_seconds < 0:
            raise EnrichError(
                "endDate is before startDate",
                code="ENRICH-NEGATIVE-DURATION",
                path="/eventData/appointment/endDate",
            )
    block = talent_block_of(appt.talentBlock)
    phase = block.talentPhase if block is not None else None
    canceled = appt.status == "CANCELED"
    return EnrichedSession(
        eventId=envelope.id,
        eventName=envelope.eventName,
        publishedAt=envelope.createdAt,
        processedAt=now,
        appointmentId=appt.id,
        talentId=appt.talentId,
        coachId=appt.coachId,
        status=appt.status,
        appointmentType=appt.appointmentType,
        createdAt=appt.createdAt,
        updatedAt=appt.updatedAt,
        deletedAt=appt.deletedAt,
        startDate=appt.startDate,
        endDate=appt.endDate,
        sessionSeconds=session_seconds,
        sessionMinutes=None if session_seconds is None else round(session_seconds / 60, 2),
        processingDelaySeconds=None if appt.endDate is None else _seconds(now, appt.endDate),
        programId=(block.programId if block else None) or (phase.programId if phase else None),
        talentPhaseId=(block.talentPhaseId if block else None) or (phase.id if phase else None),
        phaseId=phase.phaseId if phase else None,
        phaseOrder=phase.order if phase else None,
        talentBlockId=appt.talentBlockId or (block.id if block else None),
        blockId=(block.blockId if block else None) or (block.block.id if block and block.block else None),
        blockOrder=block.order if block else None,
        subphaseId=appt.subphaseId,
        cancelationReason=appt.cancelationReason if canceled else None,
        canceledBy=appt.canceledBy if canceled else None,
    )
