"""At most N calls per window, shared by every task of a worker.

A sliding log, not a token bucket: the CRM counts calls that *arrived* within any window, and a bucket lets a
full burst through right after a previous burst. A call's slot is taken before it is sent and held until
``window`` seconds after it *completed*: the CRM saw it arrive at some moment before completion, so the next call
that reuses the slot arrives at least a full window after it, whatever the network did. The price is one
round-trip per window of budget, which is nothing next to 60 s.

:class:`WindowLog` is the pure part (explicit ``now``, no clock, no sleeping); :class:`RateLimiter` waits on it
with an injected monotonic clock and sleep. A 429 the CRM sends anyway (another client on the same token) blocks
every task through :meth:`RateLimiter.block_for`.

A CRM may count several windows at once (HubSpot: 100 or 190 calls per 10 s by tier, besides a connector's own
100 per 60 s): a :class:`RateLimiter` built with several :class:`RateWindow` keeps one log per window and sends a
call only when every log has a free slot, so no window is ever overrun. :func:`parse_windows` reads them from
settings (``"100/10s,100/60s"``); both live in :mod:`app.settings`, which stands on nothing in the app.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from app.settings import RateWindow as RateWindow
from app.settings import parse_windows as parse_windows

Monotonic = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class WindowLog:
    """Slots of the last window: completed calls (by completion time) and calls in flight."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._done: deque[float] = deque()
        self._in_flight: set[int] = set()
        self._tokens = itertools.count()
        self._blocked_until = float("-inf")

    def _prune(self, now: float) -> None:
        while self._done and self._done[0] + self.window <= now:
            self._done.popleft()

    def used(self, now: float) -> int:
        self._prune(now)
        return len(self._done) + len(self._in_flight)

    def wait(self, now: float) -> float | None:
        """Seconds until a slot is free (0 = now), or None when every slot is in flight (wait for a completion)."""
        self._prune(now)
        blocked = max(0.0, self._blocked_until - now)
        if len(self._done) + len(self._in_flight) < self.limit:
            return blocked
        if not self._done:
            return None
        return max(blocked, self._done[0] + self.window - now)

    def take(self, now: float) -> int:
        if self.wait(now) != 0:
            raise RuntimeError("no free slot")
        token = next(self._tokens)
        self._in_flight.add(token)
        return token

    def complete(self, token: int, now: float) -> None:
        """The call of ``token`` finished (or failed) at ``now``; its slot frees one window later."""
        self._in_flight.discard(token)
        if self._done and now < self._done[-1]:
            now = self._done[-1]
        self._done.append(now)

    def block_until(self, until: float) -> None:
        self._blocked_until = max(self._blocked_until, until)


#: A window's wait is slept in steps of at most this, each reported (``switchyard_crm_rate_limit_wait_seconds_total``).
WAIT_STEP_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Permit:
    token: int
    waited: float
    tokens: tuple[int, ...] = ()


class RateLimiter:
    """The async face of :class:`WindowLog`. One instance per worker (per CRM token)."""

    def __init__(
        self,
        limit: int = 100,
        window: float = 60.0,
        *,
        windows: tuple[RateWindow, ...] = (),
        clock: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """One window (``limit`` per ``window``), or every one of ``windows`` when given."""
        self.windows = windows or (RateWindow(limit, window),)
        self.logs = [WindowLog(w.limit, w.seconds) for w in self.windows]
        self.log = self.logs[0]
        self._clock = clock
        self._sleep = sleep
        self._released = asyncio.Event()

    def _wait(self, now: float) -> float | None:
        """The longest wait of any window; None when one of them waits for a call in flight."""
        waits = [log.wait(now) for log in self.logs]
        if any(w is None for w in waits):
            return None
        return max(w for w in waits if w is not None)

    async def acquire(self, waiting: Callable[[float], None] | None = None) -> Permit:
        """Wait for a slot in every window; the permit says how long that took. ``waiting`` is told each stretch of
        the wait as it ends, so the rate-limit wait metric grows during a long wait, not only once it is over."""
        start = last = self._clock()
        while True:
            now = self._clock()
            if waiting is not None and now > last:
                waiting(now - last)
            last = now
            wait = self._wait(now)
            if wait == 0:
                tokens = [log.take(now) for log in self.logs]
                return Permit(tokens[0], now - start, tuple(tokens))
            if wait is None:
                self._released.clear()
                await self._released.wait()
            else:  # in steps, so that a wait of a whole window is reported while it lasts
                await self._sleep(min(wait, WAIT_STEP_SECONDS))

    def release(self, permit: Permit) -> None:
        now = self._clock()
        for log, token in zip(self.logs, permit.tokens or (permit.token,), strict=False):
            log.complete(token, now)
        self._released.set()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Permit]:
        permit = await self.acquire()
        try:
            yield permit
        finally:
            self.release(permit)

    def block_for(self, seconds: float) -> None:
        """No call for ``seconds``, for every task: the CRM said so (429 + Retry-After)."""
        for log in self.logs:
            log.block_until(self._clock() + seconds)
