"""The seed's own validation rules, answered with its error codes (``LARA-1000`` .. ``LARA-1010``).

They run on the decoded document before the pydantic models, so a record breaking one of them is dead-lettered
with the code Lära itself would answer, and the models only ever see well-formed identifiers.

**What makes an identifier invalid** (LARA-1001, 1003, 1008, 1009). Every id in the seed is the base64 form of
a 16-byte value (a GUID), written either bare and unpadded (``vBW5xMw1VQ2A8DFaNy22zA``) or URL-encoded with
its padding (``DTUvbcrKNN3szXg6aQY%2fSg%3d%3d``). An id is valid when it is a string that, after removing
surrounding whitespace and decoding ``%XX`` escapes, is 22 base64 characters (standard or URL-safe alphabet)
ending in a character whose unused low 4 bits are zero (so exactly 16 bytes, canonically encoded), optionally
followed by ``==``. Surrounding whitespace is removed rather than rejected: the seed's own period example has
``" vBW5xMw1VQ2A8DFaNy22zA"``, a copy-paste artefact that Lära evidently accepts, so rejecting it would
dead-letter the documentation's example. The id Switchyard carries on is the trimmed text, otherwise as sent
(no re-encoding: Lära compares ids as text).

**Naming a user** (member records): ``userId`` when given (LARA-1009 if invalid); otherwise
``customFieldAPIName`` (LARA-1004 when missing or blank, LARA-1005 when it is not an API name: a letter then
letters, digits or underscores, at most 100) plus a non-blank string ``customFieldValue`` (LARA-1009 when
missing: the user cannot be identified). The getmemberstatuses *response* names the user on each status
instead; a full status set without a top-level user is accepted when all its statuses carry the same valid
``userId``. The key of the member is the user id, or ``<customFieldAPIName>:<customFieldValue>``.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from app.core.errors import ValidationFailed
from app.domains.lara.models import (
    CYCLE,
    MEMBER_STATUS_CHANGE,
    MEMBER_STATUS_UPDATE,
    MEMBER_STATUSES,
    PERIOD,
    USER_PROGRESS,
    MemberStatuses,
    StatusRange,
)

REQUIRED_ID = "LARA-1000"
INVALID_ID = "LARA-1001"
REQUIRED_MEMBER_ID = "LARA-1002"
INVALID_MEMBER_ID = "LARA-1003"
REQUIRED_CUSTOM_FIELD = "LARA-1004"
INVALID_CUSTOM_FIELD = "LARA-1005"
STATUSES_MISSING = "LARA-1006"
EMPTY_STATUS = "LARA-1007"
INVALID_ENTRY_ID = "LARA-1008"
INVALID_USER = "LARA-1009"
INVALID_DATE = "LARA-1010"
UNKNOWN_TYPE = "LARA-UNKNOWN-TYPE"

_BASE64_16 = re.compile(r"[A-Za-z0-9+/_-]{21}[AQgw](?:==)?")
_API_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")


def normalise_id(value: Any) -> str | None:
    """The trimmed id, or None when ``value`` is not a valid id (rule in the module docstring)."""
    if not isinstance(value, str):
        return None
    trimmed = value.strip()
    return trimmed if _BASE64_16.fullmatch(unquote(trimmed)) else None


def is_api_name(value: Any) -> bool:
    return isinstance(value, str) and _API_NAME.fullmatch(value) is not None


def _given(doc: dict[str, Any], field: str) -> bool:
    return doc.get(field) is not None


def _blank(doc: dict[str, Any], field: str) -> bool:
    """Absent, null or only spaces: a blank name is a missing one (LARA-1004), not an invalid one."""
    value = doc.get(field)
    return value is None or (isinstance(value, str) and not value.strip())


def _id(
    doc: dict[str, Any], field: str, path: str, *, required: str | None, invalid: str, what: str = "id"
) -> None:
    """Trim ``doc[field]`` in place, or raise the seed's code for a missing or invalid id."""
    if not _given(doc, field):
        if required is not None:
            raise ValidationFailed(f"{field} is required", code=required, path=f"{path}/{field}")
        return
    trimmed = normalise_id(doc[field])
    if trimmed is None:
        raise ValidationFailed(
            f"{field} is not a valid {what} (base64 of 16 bytes, optionally URL-encoded)",
            code=invalid,
            path=f"{path}/{field}",
        )
    doc[field] = trimmed


def _cycle(doc: dict[str, Any]) -> None:
    _id(doc, "cycleId", "", required=REQUIRED_ID, invalid=INVALID_ID)
    _id(doc, "ruleId", "", required=None, invalid=INVALID_ID)


def _period(doc: dict[str, Any]) -> None:
    _id(doc, "cyclePeriodId", "", required=REQUIRED_ID, invalid=INVALID_ID)
    _id(doc, "cycleId", "", required=REQUIRED_ID, invalid=INVALID_ID)
    _id(doc, "ruleId", "", required=None, invalid=INVALID_ID)
    requirements = doc.get("requirements")
    if isinstance(requirements, list):
        for i, requirement in enumerate(requirements):
            if isinstance(requirement, dict):
                path = f"/requirements/{i}"
                _id(requirement, "id", path, required=REQUIRED_ID, invalid=INVALID_ID)
                for field in ("cyclePeriodId", "parentId", "ruleId", "providerId"):
                    _id(requirement, field, path, required=None, invalid=INVALID_ID)


def _user_progress(doc: dict[str, Any]) -> None:
    _id(doc, "id", "", required=REQUIRED_ID, invalid=INVALID_ID)
    _id(doc, "memberId", "", required=REQUIRED_MEMBER_ID, invalid=INVALID_MEMBER_ID, what="member id")
    if not _blank(doc, "customFieldAPIName") and not is_api_name(doc["customFieldAPIName"]):
        raise ValidationFailed(
            "customFieldAPIName is not an API name (a letter, then letters, digits or _; at most 100)",
            code=INVALID_CUSTOM_FIELD,
            path="/customFieldAPIName",
        )


def _status(status: Any, path: str) -> dict[str, Any]:
    """``status`` as a checked status object (a copy, its ids trimmed), or LARA-1007/1008/1009."""
    if not isinstance(status, dict):
        raise ValidationFailed("a status object must be provided", code=EMPTY_STATUS, path=path)
    name = status.get("status")
    if not isinstance(name, str) or not name.strip():
        raise ValidationFailed(
            "a non-empty status name must be provided", code=EMPTY_STATUS, path=f"{path}/status"
        )
    out: dict[str, Any] = dict(status)
    _id(out, "entryId", path, required=None, invalid=INVALID_ENTRY_ID, what="status entry id")
    _id(out, "userId", path, required=None, invalid=INVALID_USER, what="user id")
    return out


def _named_user(doc: dict[str, Any], statuses: list[dict[str, Any]]) -> str:
    """Check how the record names its user; return the member key (rules in the module docstring)."""
    _id(doc, "userId", "", required=None, invalid=INVALID_USER, what="user id")
    if not _blank(doc, "customFieldAPIName") and not is_api_name(doc["customFieldAPIName"]):
        raise ValidationFailed(
            "customFieldAPIName is not an API name (a letter, then letters, digits or _; at most 100)",
            code=INVALID_CUSTOM_FIELD,
            path="/customFieldAPIName",
        )
    user: str | None = doc.get("userId")
    for i, status in enumerate(statuses):
        named = status.get("userId")
        if named is not None and user is not None and named != user:
            raise ValidationFailed(
                "status names another user than the record", code=INVALID_USER, path=f"/statuses/{i}/userId"
            )
        user = user or named
    if user is not None:
        return user
    api_name = doc.get("customFieldAPIName")
    if not isinstance(api_name, str) or not api_name.strip():
        raise ValidationFailed(
            "customFieldAPIName is required when no userId names the user",
            code=REQUIRED_CUSTOM_FIELD,
            path="/customFieldAPIName",
        )
    value = doc.get("customFieldValue")
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(
            "customFieldValue must be a non-empty string when no userId names the user",
            code=INVALID_USER,
            path="/customFieldValue",
        )
    doc["customFieldValue"] = value.strip()
    return f"{api_name}:{value.strip()}"


def _member_statuses(doc: dict[str, Any]) -> str:
    statuses = doc.get("statuses")
    if not isinstance(statuses, list):
        raise ValidationFailed("a list of statuses must be provided", code=STATUSES_MISSING, path="/statuses")
    checked = [_status(s, f"/statuses/{i}") for i, s in enumerate(statuses)]
    doc["statuses"] = checked
    return _named_user(doc, checked)


def _member_status_update(doc: dict[str, Any]) -> str:
    status = _status(doc.get("status"), "/status")
    _id(doc, "entryId", "", required=INVALID_ENTRY_ID, invalid=INVALID_ENTRY_ID, what="status entry id")
    if status.get("entryId") not in (None, doc["entryId"]):
        raise ValidationFailed(
            "status names another entry than the record", code=INVALID_ENTRY_ID, path="/status/entryId"
        )
    doc["status"] = status
    return _named_user(doc, [status])


def _member_status_change(doc: dict[str, Any]) -> str:
    status = _status(doc.get("status"), "/status")
    doc["status"] = status
    return _named_user(doc, [status])


def check(event_type: str, doc: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The document with its ids trimmed, and the member key of member records (None for the others); or
    :class:`ValidationFailed` with the seed's code."""
    out = dict(doc)
    if event_type == CYCLE:
        _cycle(out)
    elif event_type == PERIOD:
        if isinstance(out.get("requirements"), list):
            out["requirements"] = [dict(r) if isinstance(r, dict) else r for r in out["requirements"]]
        _period(out)
    elif event_type == USER_PROGRESS:
        _user_progress(out)
    elif event_type == MEMBER_STATUSES:
        return out, _member_statuses(out)
    elif event_type == MEMBER_STATUS_UPDATE:
        return out, _member_status_update(out)
    elif event_type == MEMBER_STATUS_CHANGE:
        return out, _member_status_change(out)
    return out, None


def check_range(status: StatusRange, path: str) -> None:
    """A range ending before it starts (LARA-1010), reported at ``path``."""
    if status.endDate is not None and status.endDate < status.startDate:
        raise ValidationFailed(
            "endDate must be on or after startDate", code=INVALID_DATE, path=f"{path}/endDate"
        )


def check_statuses(model: MemberStatuses) -> None:
    """Every range of a full status set, and no two entries of one id in it (LARA-1008)."""
    seen: set[str] = set()
    for i, status in enumerate(model.statuses):
        check_range(status, f"/statuses/{i}")
        if status.entryId is not None:
            if status.entryId in seen:
                raise ValidationFailed(
                    "entryId appears twice in the set", code=INVALID_ENTRY_ID, path=f"/statuses/{i}/entryId"
                )
            seen.add(status.entryId)
