"""A test-only domain whose rules can be told to return what no JSON encoder writes (an integer past 64 bits),
from ``route`` or from the table fold, so the runtime's handling of a domain bug *after* the pure functions
returned can be shown on a real broker, at-least-once and exactly-once.

Records are JSON objects ``{"id": str, "poison": "route" | "fold" | null}``; accepted ones go to
``poisondomain.out`` and into a per-id table fed by ``poisondomain.feed``.
"""

from app.core.domain import Domain

from .rules import RULES

DOMAIN = Domain(RULES)
