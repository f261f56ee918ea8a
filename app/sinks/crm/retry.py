"""How long to wait before retrying a call that failed retriably.

Exponential backoff with full jitter (a uniform draw in ``[0, min(cap, base * 2**attempt)]``), so workers that
failed together do not come back together; when the CRM named a ``Retry-After``, never less than that. The cap
bounds our own backoff only: a longer ``Retry-After`` is the CRM's call to make (bounded by ``max_retry_after``
against a garbled header).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 3600.0
    rng: random.Random = field(default_factory=random.Random)

    def ceiling(self, attempt: int) -> float:
        """The largest jittered delay of retry number ``attempt`` (0 = first retry)."""
        return min(self.cap, self.base * 2.0 ** min(attempt, 62))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        jittered = self.rng.uniform(0.0, self.ceiling(attempt))
        if retry_after is None:
            return jittered
        return max(jittered, min(max(retry_after, 0.0), self.max_retry_after))
