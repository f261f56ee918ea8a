"""Lära's query API: one member's compliance, one member's status timeline, and what a custom field
(``customFieldAPIName:customFieldValue``) resolves to (its user, or null and the records held until a link).

Compliance is rendered with :func:`~app.domains.lara.state.compliance_view` at the worker's clock at the time of
the request, not read from the last snapshot: "active now" and "current period" move with time even when no
record arrives, and the snapshot on ``lara.compliance`` is only as fresh as the member's last change.

Member keys are Lära ids, which may hold ``/``, ``+`` and ``%`` (bare or URL-encoded base64), so callers must
percent-encode the key as one path segment (``urllib.parse.quote(key, safe="")``).
"""

from __future__ import annotations

from typing import Any

from app.core.runtime import Runtime, table_query
from app.domains.lara.rules import RULES
from app.domains.lara.state import COMPLIANCE_TABLE, IDENTITY_TABLE, TIMELINE_TABLE, compliance_view

COMPLIANCE_PATH = "/api/lara/members/{id}/compliance"
TIMELINE_PATH = "/api/lara/members/{id}/timeline"
IDENTITY_PATH = "/api/lara/identities/{id}"

_TIMELINE_FIELDS = ("memberKey", "revision", "entries")


def timeline_view(state: dict[str, Any]) -> dict[str, Any]:
    """The timeline as answered: entries in time order (concurrent ranges overlap), without bookkeeping."""
    return {f: state[f] for f in _TIMELINE_FIELDS}


def register(runtime: Runtime) -> None:
    table_query(
        runtime,
        COMPLIANCE_PATH,
        RULES.name,
        COMPLIANCE_TABLE,
        "id",
        render=lambda state: compliance_view(state, runtime.clock()),
    )
    table_query(runtime, TIMELINE_PATH, RULES.name, TIMELINE_TABLE, "id", render=timeline_view)
    table_query(runtime, IDENTITY_PATH, RULES.name, IDENTITY_TABLE, "id")
