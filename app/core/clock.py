"""Time is injected: pure functions take ``now`` so enrichment is reproducible in tests and in ``check``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The production clock: timezone-aware UTC."""
    return datetime.now(UTC)


def fixed(at: datetime) -> Clock:
    """A clock stopped at ``at``; for tests and ``switchyard check --now``."""
    return lambda: at


def iso(ts: datetime) -> str:
    """ISO-8601 in UTC with a ``Z``, the one timestamp format Switchyard writes."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
