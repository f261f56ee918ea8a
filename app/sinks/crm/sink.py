"""CrmSink: a batch of commands in, every one acknowledged by the CRM or dead-lettered out.

``write`` plans the batch (``batching.plan``) and runs the calls in plan order, one after another (the rate limit,
not latency, bounds throughput). Each call: breaker (wait while open) -> adapter op, whose every HTTP request
takes a rate-limit permit -> classify:

- retriable (5xx, timeouts, connection errors, 429) -> back off (``retry.Backoff``, honouring Retry-After) and
  send the same call again, forever by default: an outage of any length loses nothing. The idempotency keys are
  stable per call, so a call that took effect before its answer was lost has no second effect.
- the whole call refused (4xx) -> split it in halves and send each (one bad input must not dead-letter 99 good
  ones); a single refused input is dead-lettered.
- one input refused in a batch answer -> dead-letter its commands. A refused *merged* input is re-sent source by
  source first, since a later command may not deserve its predecessor's refusal.

A command naming an id longer than the CRM holds (``commands.MAX_CRM_ID``) is dead-lettered before any call
(``CRM-ID-TOO-LONG``, no status: it never reached the CRM); the rest of the batch goes on.

Dead letters carry the CRM's category, message (values we sent scrubbed out) and codes, never the inputs.
``write`` returns only when every command has an outcome, or raises the last retriable error once
``give_up_after`` seconds of failure have passed (for a shutdown or rebalance; the caller does not commit and
the same commands come again).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.trace import Span

from app.core.clock import Clock, utc_now
from app.core.errors import BackpressureError, PermanentSinkError, RetriableSinkError
from app.core.tracing import NO_TRACING, Tracing
from app.settings import Settings
from app.sinks.crm.base import CallRecord, CrmAdapter, Gate, ItemError, ItemResult
from app.sinks.crm.batching import Call, Item, plan
from app.sinks.crm.breaker import BreakerState, CircuitBreaker
from app.sinks.crm.commands import MAX_CRM_ID, CommandOp, CrmCommand, id_too_long
from app.sinks.crm.limiter import Monotonic, RateLimiter, Sleep
from app.sinks.crm.retry import Backoff


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A command the CRM refused for good: what goes to ``crm.deadletter``."""

    command: CrmCommand
    status: int | None  # None when the command never reached the CRM
    body: str
    code: str = "SINK-PERMANENT"


class SinkHooks(Protocol):
    """Metrics the sink reports; the integrator binds them to ``app.sinks.crm.metrics`` (Prometheus)."""

    def call(self, op: str, status: str) -> None: ...
    def commands(self, op: str, outcome: str, count: int) -> None: ...
    def batch_size(self, op: str, size: int) -> None: ...
    def rate_limit_wait(self, seconds: float) -> None: ...
    def breaker_state(self, state: str) -> None: ...
    def ack_latency(self, seconds: float) -> None: ...


class NoHooks:
    """The default: metrics go nowhere."""

    def call(self, op: str, status: str) -> None:
        return None

    def commands(self, op: str, outcome: str, count: int) -> None:
        return None

    def batch_size(self, op: str, size: int) -> None:
        return None

    def rate_limit_wait(self, seconds: float) -> None:
        return None

    def breaker_state(self, state: str) -> None:
        return None

    def ack_latency(self, seconds: float) -> None:
        return None


@dataclass(frozen=True)
class SinkConfig:
    """Knobs of the sink (built from ``Settings`` by :meth:`from_settings`)."""

    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    breaker_failures: int = 5
    breaker_reset: float = 10.0
    give_up_after: float | None = None
    batch_size: int = 100

    @classmethod
    def from_settings(cls, settings: Settings) -> SinkConfig:
        return cls(
            batch_size=settings.crm_batch_size,
            backoff_cap=settings.crm_backoff_cap_seconds,
            breaker_reset=settings.crm_breaker_reset_seconds,
        )


@dataclass
class _Tally:
    dead: list[DeadLetter] = field(default_factory=list)
    #: command id -> the span of the record that carried it (tracing on)
    spans: Mapping[str, Span] = field(default_factory=dict)


class CrmSink:
    def __init__(
        self,
        adapter: CrmAdapter,
        limiter: RateLimiter,
        config: SinkConfig | None = None,
        *,
        clock: Clock = utc_now,
        monotonic: Monotonic = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        hooks: SinkHooks | None = None,
        rng: random.Random | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        self.adapter = adapter
        self.tracing = tracing
        self.limiter = limiter
        self.config = config or SinkConfig()
        self.hooks: SinkHooks = hooks or NoHooks()
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self.breaker = CircuitBreaker(self.config.breaker_failures, self.config.breaker_reset)
        self.backoff = Backoff(self.config.backoff_base, self.config.backoff_cap, rng=rng or random.Random())

    def _batch_limit(self, op: CommandOp) -> int:
        return max(1, min(self.config.batch_size, self.adapter.batch_limit(op)))

    async def write(
        self, commands: Sequence[CrmCommand], spans: Mapping[str, Span] | None = None
    ) -> list[DeadLetter]:
        """Apply ``commands`` (in their order); the ones the CRM refused for good. With ``spans`` (command id ->
        the span of its record; tracing on) each HTTP call is a client span in the trace of its first command,
        linked to the others'."""
        tally = _Tally(spans=spans or {})
        carried: list[CrmCommand] = []
        for command in commands:
            field_name = id_too_long(command)
            if field_name is None:
                carried.append(command)
                continue
            message = f"{field_name} is longer than the {MAX_CRM_ID} characters the CRM holds"
            tally.dead.append(DeadLetter(command, None, message, code="CRM-ID-TOO-LONG"))
            self.hooks.commands(command.op, "dead_lettered", 1)
        for call in plan(carried, self._batch_limit, self.adapter.accepts):
            await self._run_call(call, tally)
        return tally.dead

    # --- one planned call ----------------------------------------------------------------------------------------
    async def _run_call(self, call: Call, tally: _Tally) -> None:
        try:
            results = await self._send(call.op, call.items, tally)
        except PermanentSinkError as exc:
            if len(call.items) > 1:
                half = len(call.items) // 2
                await self._run_call(Call(call.op, call.items[:half]), tally)
                await self._run_call(Call(call.op, call.items[half:]), tally)
                return
            item = call.items[0]
            error = ItemError(exc.status or 400, "REFUSED", exc.message)
            await self._refused(call.op, item, error, exc.body or error.body(), tally)
            return
        for item, result in zip(call.items, results, strict=True):
            if result.ok:
                self._acked(call.op, item.sources)
            else:
                assert result.error is not None
                await self._refused(call.op, item, result.error, result.error.body(), tally)

    async def _refused(self, op: CommandOp, item: Item, error: ItemError, body: str, tally: _Tally) -> None:
        if len(item.sources) > 1:
            for src in item.sources:
                await self._run_call(Call(op, (Item(src, (src,)),)), tally)
            return
        tally.dead.append(DeadLetter(item.command, error.status, body, code=error.code))
        self.hooks.commands(op, "dead_lettered", 1)

    def _acked(self, op: CommandOp, sources: Sequence[CrmCommand]) -> None:
        now = self._clock()
        self.hooks.commands(op, "acknowledged", len(sources))
        for src in sources:
            self.hooks.ack_latency(max(0.0, (now - src.issued_at).total_seconds()))

    async def _send(self, op: CommandOp, items: Sequence[Item], tally: _Tally) -> list[ItemResult]:
        """The adapter op for ``items``, retried until it answers or refuses (see the module doc)."""
        commands = [item.command for item in items]
        gate: Gate = self._gate
        if tally.spans:
            parents = [s for s in (tally.spans.get(src.command_id) for i in items for src in i.sources) if s]
            gate = self._traced_gate(parents)
        self.hooks.batch_size(op, len(commands))
        attempt = 0
        failing_since: float | None = None
        while True:
            await self._breaker_wait()
            try:
                results = await self.adapter.execute(op, commands, gate)
            except BackpressureError as exc:
                self._breaker_success()
                delay = self.backoff.delay(attempt, exc.retry_after)
                if exc.retry_after:
                    self.limiter.block_for(exc.retry_after)
                failure: RetriableSinkError = exc
            except RetriableSinkError as exc:
                self.breaker.failure(self._monotonic())
                self.hooks.breaker_state(self.breaker.state(self._monotonic()).value)
                delay = self.backoff.delay(attempt, exc.retry_after)
                failure = exc
            else:
                self._breaker_success()
                return results
            now = self._monotonic()
            failing_since = now if failing_since is None else failing_since
            if self.config.give_up_after is not None and now - failing_since >= self.config.give_up_after:
                raise failure
            attempt += 1
            await self._sleep(delay)

    def _breaker_success(self) -> None:
        """The CRM answered (a 429 counts: it is up and says when to come back)."""
        was_open = self.breaker.state(self._monotonic()) is not BreakerState.CLOSED
        self.breaker.success()
        if was_open:
            self.hooks.breaker_state(BreakerState.CLOSED.value)

    async def _breaker_wait(self) -> None:
        while (wait := self.breaker.wait(self._monotonic())) > 0:
            self.hooks.breaker_state(self.breaker.state(self._monotonic()).value)
            await self._sleep(wait)

    @asynccontextmanager
    async def _gate(self, op: str, endpoint: str) -> AsyncIterator[CallRecord]:
        permit = await self.limiter.acquire(waiting=self.hooks.rate_limit_wait)
        record = CallRecord(op, endpoint)
        try:
            yield record
        finally:
            self.limiter.release(permit)
            self.hooks.call(op, str(record.status) if record.status is not None else "error")

    def _traced_gate(self, parents: Sequence[Span]) -> Gate:
        """:meth:`_gate` inside an HTTP client span whose parents are the spans of the commands the call carries.
        The span opens once the rate-limit permit is taken: its duration is the request's, the wait is the
        limiter's (``switchyard_crm_rate_limit_wait_seconds_total``)."""
        base = self.adapter.base_url

        def gate(op: str, endpoint: str) -> AbstractAsyncContextManager[CallRecord]:
            @asynccontextmanager
            async def traced() -> AsyncIterator[CallRecord]:
                async with self._gate(op, endpoint) as record:
                    attributes = {"switchyard.crm.op": op, "switchyard.crm.commands": len(parents)}
                    # every request of the CRM v3 adapter is a POST (base.Gate wraps exactly one)
                    with self.tracing.http_call(
                        "POST", base + endpoint, endpoint, parents, lambda: record.status, attributes
                    ):
                        yield record

            return traced()

        return gate


def build_sink(
    settings: Settings,
    *,
    hooks: SinkHooks | None = None,
    adapter_factory: Callable[[Settings], CrmAdapter] | None = None,
    tracing: Tracing = NO_TRACING,
) -> CrmSink:
    """The sink the worker runs, from the settings: HubSpot adapter, the settings' rate limits (every window)
    and batch size."""
    from app.sinks.crm.hubspot import HubSpotAdapter

    def hubspot(s: Settings) -> CrmAdapter:
        return HubSpotAdapter(s.crm_base_url, s.crm_token.get_secret_value(), timeout=s.crm_timeout_seconds)

    limiter = RateLimiter(windows=settings.crm_rate_windows)
    adapter = (adapter_factory or hubspot)(settings)
    return CrmSink(adapter, limiter, SinkConfig.from_settings(settings), hooks=hooks, tracing=tracing)
