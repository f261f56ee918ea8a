"""The one interface a CRM adapter implements, and how any CRM's HTTP answers map onto the error tree.

An adapter turns a batch of commands of one op into HTTP calls and reports one :class:`ItemResult` per command.
Failures of the whole call are raised, classified once here so every adapter retries and dead-letters alike:

- 429 -> :class:`BackpressureError` carrying ``Retry-After`` (slow down, then retry);
- 5xx, 408, timeouts, refused connections -> :class:`RetriableSinkError` (retry until the CRM is back);
- 401/403 -> :class:`RetriableSinkError` with code ``CRM-AUTH``: a revoked token is an operator's problem, and
  dead-lettering every command until it is fixed would lose the stream, which a CRM outage must not do;
- any other 4xx -> :class:`PermanentSinkError` (status + a body scrubbed of personal data);
- an error a batch answer reports for one input -> an :class:`ItemResult` with an :class:`ItemError` for that
  command only; the rest of the batch is acknowledged.

Every HTTP call goes through a :data:`Gate` the caller passes in: the sink's gate takes a rate-limit permit and
records the call's status, so the budget counts HTTP calls, not adapter calls (one op may need several).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import orjson

from app.core.errors import BackpressureError, PermanentSinkError, RetriableSinkError
from app.sinks.crm.commands import CommandOp, CrmCommand

REDACTED = "<redacted>"

#: HubSpot error categories of batch answers, as HTTP statuses for dead-letter records.
CATEGORY_STATUS: dict[str, int] = {
    "VALIDATION_ERROR": 400,
    "OBJECT_NOT_FOUND": 404,
    "CONFLICT": 409,
    "OBJECT_ALREADY_EXISTS": 409,
}


@dataclass(frozen=True, slots=True)
class ItemError:
    """Why the CRM refused one input: what a dead-letter record keeps. Never carries the input's values."""

    status: int
    category: str
    message: str
    codes: tuple[str, ...] = ()
    dead_letter_code: str | None = None
    """The dead-letter code when the refusal has one of its own; else ``CRM-<status>``."""

    @property
    def code(self) -> str:
        return self.dead_letter_code or f"CRM-{self.status}"

    def body(self) -> str:
        return orjson.dumps(
            {"category": self.category, "message": self.message, "codes": list(self.codes)},
            option=orjson.OPT_SORT_KEYS,
        ).decode()


CONTACT_NOT_FOUND = ItemError(
    404, "OBJECT_NOT_FOUND", "The activity's contact does not exist", ("CONTACT_NOT_FOUND",)
)
CONTACT_ARCHIVED = ItemError(
    409,
    "CONTACT_ARCHIVED",
    "The activity's contact is archived; restore the contact (a profile update does), then replay",
    ("CONTACT_ARCHIVED",),
    dead_letter_code="CRM-CONTACT-ARCHIVED",
)
"""An activity for an archived contact is refused, not written: HubSpot neither finds an archived contact by
default nor associates anything with it, and restoring it would undo a decision made upstream (Vome archived
the volunteer). The command is dead-lettered with its own code and replays once the contact is restored."""


@dataclass(frozen=True, slots=True)
class ItemResult:
    """The CRM's answer for one command of a batch: acknowledged (``error is None``) or refused for good."""

    command_id: str
    error: ItemError | None = None
    crm_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class CallRecord:
    """One HTTP call as the gate sees it; the adapter fills in the status it got (``None`` = no answer)."""

    __slots__ = ("endpoint", "op", "status")

    def __init__(self, op: str, endpoint: str) -> None:
        self.op = op
        self.endpoint = endpoint
        self.status: int | None = None


Gate = Callable[[str, str], AbstractAsyncContextManager[CallRecord]]
"""``gate(op, endpoint)`` wraps exactly one HTTP request."""


@asynccontextmanager
async def open_gate(op: str, endpoint: str) -> AsyncIterator[CallRecord]:
    """No limit, no metrics: for tests and one-off scripts."""
    yield CallRecord(op, endpoint)


class CrmAdapter(ABC):
    """A CRM's API behind the five command ops. Each method takes commands of its op only, at most
    :meth:`batch_limit` of them, with distinct targets (the planner guarantees both), and returns one result
    per command in input order."""

    max_batch_size: int = 100
    #: where the adapter's requests go (for the HTTP client spans' ``url.full``); "" when it does not say
    base_url: str = ""

    def batch_limit(self, op: CommandOp) -> int:
        """Inputs one call of ``op`` may carry; an op the API has no batch endpoint for says 1."""
        return self.max_batch_size

    def accepts(self, cmd: CrmCommand) -> bool:
        """Whether the CRM is expected to take ``cmd``'s values; only such commands may be coalesced."""
        return True

    @abstractmethod
    async def upsert_contacts(
        self, cmds: Sequence[CrmCommand], gate: Gate = open_gate
    ) -> list[ItemResult]: ...

    @abstractmethod
    async def archive_contacts(
        self, cmds: Sequence[CrmCommand], gate: Gate = open_gate
    ) -> list[ItemResult]: ...

    @abstractmethod
    async def erase_contacts(
        self, cmds: Sequence[CrmCommand], gate: Gate = open_gate
    ) -> list[ItemResult]: ...

    @abstractmethod
    async def upsert_activities(
        self, cmds: Sequence[CrmCommand], gate: Gate = open_gate
    ) -> list[ItemResult]: ...

    @abstractmethod
    async def delete_activities(
        self, cmds: Sequence[CrmCommand], gate: Gate = open_gate
    ) -> list[ItemResult]: ...

    async def execute(
        self, op: CommandOp, cmds: Sequence[CrmCommand], gate: Gate = open_gate
    ) -> list[ItemResult]:
        """Dispatch by op, so the sink does not need to know the method names."""
        method = {
            "contact.upsert": self.upsert_contacts,
            "contact.archive": self.archive_contacts,
            "contact.erase": self.erase_contacts,
            "activity.upsert": self.upsert_activities,
            "activity.delete": self.delete_activities,
        }[op]
        return await method(cmds, gate)

    async def aclose(self) -> None:
        """Release connections; adapters without any keep the default."""
        return None


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None when absent or garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a value we sent replaced: CRMs like to quote the offending value."""
    for secret in sorted({s for s in secrets if len(s) >= 2}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def command_values(cmds: Iterable[CrmCommand]) -> list[str]:
    """Every value of ``cmds`` that could be personal data, as text, for :func:`redact`."""
    out: list[str] = []
    for cmd in cmds:
        out.append(cmd.contact_id)
        out.extend(str(v) for v in cmd.properties.values() if v is not None and not isinstance(v, bool))
    return out


def error_codes(body: Any) -> tuple[str, ...]:
    """The machine codes (and property names) of a HubSpot error object, for dead-letter bodies."""
    if not isinstance(body, dict):
        return ()
    codes: list[str] = []
    for err in body.get("errors") or ():
        if isinstance(err, dict):
            code = err.get("code") or err.get("subCategory")
            where = err.get("in")
            if code:
                codes.append(f"{code}@{where}" if where else str(code))
    return tuple(codes)


def item_error(body: Any, secrets: Iterable[str], status: int | None = None) -> ItemError:
    """An :class:`ItemError` from a HubSpot error object (whole answer or one entry of a batch's ``errors``)."""
    data = body if isinstance(body, dict) else {}
    category = str(data.get("category") or "UNKNOWN")
    message = redact(str(data.get("message") or ""), secrets)
    return ItemError(
        status=status if status is not None else CATEGORY_STATUS.get(category, 400),
        category=category,
        message=message,
        codes=error_codes(data),
    )


def raise_for_answer(
    status: int, body: bytes, retry_after: float | None, *, what: str, secrets: Iterable[str] = ()
) -> None:
    """Raise the classified error of an HTTP answer that is not a success (see the module doc)."""
    if status < 400:
        return
    if status == 429:
        raise BackpressureError(f"{what}: rate limited by the CRM", code="CRM-429", retry_after=retry_after)
    if status >= 500 or status == 408:
        raise RetriableSinkError(
            f"{what}: CRM answered {status}", code=f"CRM-{status}", retry_after=retry_after
        )
    if status in (401, 403):
        raise RetriableSinkError(f"{what}: CRM refused the credentials ({status})", code="CRM-AUTH")
    try:
        parsed: Any = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        parsed = {}
    err = item_error(parsed, secrets, status)
    raise PermanentSinkError(
        f"{what}: CRM refused the call ({status})", code=f"CRM-{status}", status=status, body=err.body()
    )
