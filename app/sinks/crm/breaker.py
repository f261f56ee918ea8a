"""Circuit breaker: stop hammering a CRM that keeps failing, probe it now and then, resume when it answers.

Open means *wait*, never drop: the sink sleeps until a probe is allowed, so an outage of any length costs time,
not commands. ``failure_threshold`` consecutive retriable failures open it for ``reset_timeout`` seconds; then it
is half-open and lets one probe through: success closes it, failure opens it again. A probe that never reports
(its task was cancelled) stops blocking others after another ``reset_timeout``. Rate limiting (429) is not a
failure but an answer: the CRM is up and said when to come back, so the sink reports it as a success.

Pure state machine with the time passed in; the state is exposed for the breaker metric.
"""

from __future__ import annotations

from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, failure_threshold: int = 5, reset_timeout: float = 10.0) -> None:
        if failure_threshold < 1 or reset_timeout <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self._failures = 0
        self._opened_at = 0.0
        self._probe_at: float | None = None
        self._open = False

    def state(self, now: float) -> BreakerState:
        if not self._open:
            return BreakerState.CLOSED
        return BreakerState.OPEN if now < self._opened_at + self.reset_timeout else BreakerState.HALF_OPEN

    def wait(self, now: float) -> float:
        """Seconds before a call may go (0 = now). A 0 in half-open state takes the one probe slot."""
        if not self._open:
            return 0.0
        ready = self._opened_at + self.reset_timeout
        if now < ready:
            return ready - now
        if self._probe_at is not None and now < self._probe_at + self.reset_timeout:
            return self._probe_at + self.reset_timeout - now
        self._probe_at = now
        return 0.0

    def success(self) -> None:
        self._failures = 0
        self._open = False
        self._probe_at = None

    def failure(self, now: float) -> None:
        self._failures += 1
        if self._open or self._failures >= self.failure_threshold:
            self._open = True
            self._opened_at = now
            self._probe_at = None
