"""Rate limiter, backoff and circuit breaker on a fake clock: no sleeps, no timing assertions."""

from __future__ import annotations

import asyncio
import random

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from app.settings import Settings
from app.sinks.crm.breaker import BreakerState, CircuitBreaker
from app.sinks.crm.limiter import RateLimiter, RateWindow, WindowLog, parse_windows
from app.sinks.crm.retry import Backoff


class FakeTime:
    """A monotonic clock that only moves when someone sleeps or a call takes time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)


def max_in_window(stamps: list[float], window: float) -> int:
    """Most calls in any window. A call leaves the window of ``t`` when ``call + window <= t``, the limiter's
    own arithmetic: ``t - window`` rounds differently in floating point, and one ulp made a call at exactly
    one window later count as inside it."""
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while stamps[lo] + window <= t:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_window_log_frees_a_slot_one_window_after_completion() -> None:
    log = WindowLog(2, 10.0)
    a = log.take(0.0)
    b = log.take(0.0)
    assert log.wait(0.0) is None
    log.complete(a, 3.0)
    assert log.wait(3.0) == pytest.approx(10.0)
    assert log.wait(12.9) == pytest.approx(0.1)
    assert log.wait(13.0) == 0
    log.take(13.0)
    log.complete(b, 14.0)
    assert log.used(14.0) == 2
    assert log.wait(20.0) == pytest.approx(4.0)


def test_window_log_refuses_to_overbook_and_honours_a_block() -> None:
    log = WindowLog(1, 5.0)
    log.take(0.0)
    with pytest.raises(RuntimeError):
        log.take(0.0)
    fresh = WindowLog(3, 5.0)
    fresh.block_until(7.0)
    assert fresh.wait(2.0) == pytest.approx(5.0)
    assert fresh.wait(7.0) == 0


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6),
    st.sampled_from([1.0, 5.0, 60.0]),
    st.lists(st.floats(0.0, 3.0), min_size=1, max_size=40),
    st.integers(1, 8),
)
@example(limit=1, window=5.0, durations=[0.0, 0.0, 0.0, 0.0, 0.0, 1.1477424300080075], tasks=1)
def test_concurrent_tasks_never_exceed_the_limit_in_any_window(
    limit: int, window: float, durations: list[float], tasks: int
) -> None:
    clock = FakeTime()
    limiter = RateLimiter(limit, window, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    waits: list[float] = []
    jobs = list(durations)

    async def worker() -> None:
        while jobs:
            duration = jobs.pop()
            async with limiter.slot() as permit:
                waits.append(permit.waited)
                sent.append(clock())
                await clock.sleep(duration)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    asyncio.run(main())
    assert len(sent) == len(durations)
    assert max_in_window(sent, window) <= limit
    assert all(w >= 0 for w in waits)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 5), st.sampled_from([1.0, 2.0, 10.0, 60.0])), min_size=2, max_size=3),
    st.lists(st.floats(0.0, 2.0), min_size=1, max_size=40),
    st.integers(1, 6),
)
def test_several_windows_are_all_kept(
    spec: list[tuple[int, float]], durations: list[float], tasks: int
) -> None:
    clock = FakeTime()
    windows = tuple(RateWindow(limit, seconds) for limit, seconds in spec)
    limiter = RateLimiter(windows=windows, clock=clock, sleep=clock.sleep)
    sent: list[float] = []
    jobs = list(durations)

    async def worker() -> None:
        while jobs:
            duration = jobs.pop()
            async with limiter.slot():
                sent.append(clock())
                await clock.sleep(duration)

    async def main() -> None:
        await asyncio.gather(*(worker() for _ in range(tasks)))

    asyncio.run(main())
    assert len(sent) == len(durations)
    for w in windows:
        assert max_in_window(sent, w.seconds) <= w.limit, (w, sent)


async def test_the_burst_window_and_the_long_window_each_hold_back_in_turn() -> None:
    """HubSpot's 10 s burst limit beside a 60 s budget: 4 per 2 s and 6 per 60 s on a fake clock."""
    clock = FakeTime()
    limiter = RateLimiter(windows=parse_windows("4/2s,6/1m"), clock=clock, sleep=clock.sleep)
    waited = []
    for _ in range(7):
        permit = await limiter.acquire()
        limiter.release(permit)
        waited.append(round(permit.waited, 6))
    # four at once, then the 2 s window, then the 60 s window (one minute after the first completions)
    assert waited == [0, 0, 0, 0, 2.0, 0, 58.0]


def test_windows_are_read_from_settings_and_a_bad_one_is_named() -> None:
    assert parse_windows("100/10s, 100/60s") == (RateWindow(100, 10.0), RateWindow(100, 60.0))
    assert parse_windows("5/500ms,1000/1h") == (RateWindow(5, 0.5), RateWindow(1000, 3600.0))
    assert Settings(crm_rate_limits="190/10s,100/60").crm_rate_windows == (
        RateWindow(190, 10.0),
        RateWindow(100, 60.0),
    )
    assert Settings(crm_rate_limit_calls=7, crm_rate_limit_window_seconds=3).crm_rate_windows == (
        RateWindow(7, 3.0),
    )
    for bad in ("100 per minute", "0/10s", "10/0s", "10/10s,"):
        with pytest.raises(ValueError, match="rate-limit window"):
            parse_windows(bad)


async def test_the_first_limit_calls_go_at_once_and_the_next_waits_a_window() -> None:
    clock = FakeTime()
    limiter = RateLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    permits = [await limiter.acquire() for _ in range(3)]
    assert [p.waited for p in permits] == [0, 0, 0]
    for p in permits:
        limiter.release(p)
    fourth = await limiter.acquire()
    assert fourth.waited == pytest.approx(60.0)


async def test_a_task_waits_for_a_release_when_every_slot_is_in_flight() -> None:
    clock = FakeTime()
    limiter = RateLimiter(1, 1.0, clock=clock, sleep=clock.sleep)
    held = await limiter.acquire()
    waiter = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    clock.now += 5.0
    limiter.release(held)
    got = await waiter
    assert got.waited == pytest.approx(6.0)


def test_backoff_is_full_jitter_under_the_exponential_ceiling_and_capped() -> None:
    backoff = Backoff(base=0.5, cap=8.0, rng=random.Random(7))
    assert [backoff.ceiling(a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    draws = [backoff.delay(3) for _ in range(500)]
    assert all(0.0 <= d <= 4.0 for d in draws)
    assert min(draws) < 1.0 and max(draws) > 3.0
    assert backoff.ceiling(10_000) == 8.0


def test_backoff_never_waits_less_than_retry_after_and_bounds_a_garbled_one() -> None:
    backoff = Backoff(base=0.5, cap=2.0, max_retry_after=600.0, rng=random.Random(1))
    assert all(backoff.delay(0, retry_after=30.0) == 30.0 for _ in range(50))
    assert backoff.delay(0, retry_after=10**9) == 600.0
    assert 0.0 <= backoff.delay(5, retry_after=0.0) <= 2.0


def test_backoff_is_reproducible_with_a_seeded_rng() -> None:
    a = Backoff(rng=random.Random(3))
    b = Backoff(rng=random.Random(3))
    assert [a.delay(i) for i in range(10)] == [b.delay(i) for i in range(10)]


def test_breaker_opens_after_consecutive_failures_probes_once_and_closes() -> None:
    br = CircuitBreaker(failure_threshold=3, reset_timeout=10.0)
    br.failure(0.0)
    br.failure(1.0)
    br.success()
    br.failure(2.0)
    br.failure(3.0)
    assert br.state(3.0) is BreakerState.CLOSED and br.wait(3.0) == 0
    br.failure(4.0)
    assert br.state(4.0) is BreakerState.OPEN
    assert br.wait(5.0) == pytest.approx(9.0)
    assert br.state(14.0) is BreakerState.HALF_OPEN
    assert br.wait(14.0) == 0
    assert br.wait(14.5) > 0
    br.success()
    assert br.state(15.0) is BreakerState.CLOSED and br.wait(15.0) == 0


def test_a_failed_probe_reopens_and_a_lost_probe_expires() -> None:
    br = CircuitBreaker(failure_threshold=1, reset_timeout=5.0)
    br.failure(0.0)
    assert br.wait(5.0) == 0
    br.failure(5.0)
    assert br.state(6.0) is BreakerState.OPEN and br.wait(6.0) == pytest.approx(4.0)
    assert br.wait(10.0) == 0
    assert br.wait(12.0) == pytest.approx(3.0)
    assert br.wait(15.0) == 0


async def test_a_long_wait_is_reported_while_it_lasts_not_only_when_the_permit_comes() -> None:
    clock = FakeTime()
    limiter = RateLimiter(1, 60.0, clock=clock, sleep=clock.sleep)
    limiter.release(await limiter.acquire())
    reported: list[float] = []
    got = await limiter.acquire(waiting=reported.append)
    assert got.waited == pytest.approx(60.0)
    # reported in steps as the wait went on (the metric grows during a long wait), adding up to the whole of it
    assert len(reported) >= 60 and max(reported) <= 1.0 and sum(reported) == pytest.approx(60.0)
