"""CrmSink over an in-memory CRM (the sequential model) with scripted failures, on fake time."""

from __future__ import annotations

import random
from collections import Counter, deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from prometheus_client import CollectorRegistry

from app.core.errors import BackpressureError, PermanentSinkError, RetriableSinkError
from app.sinks.crm.base import (
    CrmAdapter,
    Gate,
    ItemResult,
    open_gate,
    parse_retry_after,
    raise_for_answer,
    redact,
)
from app.sinks.crm.commands import CommandOp, CrmCommand
from app.sinks.crm.hooks import PrometheusHooks
from app.sinks.crm.limiter import RateLimiter
from app.sinks.crm.metrics import CrmMetrics
from app.sinks.crm.model import CrmModel, expected_state
from app.sinks.crm.sink import CrmSink, SinkConfig
from tests.unit.test_crm_batching import cmd
from tests.unit.test_crm_limiter import FakeTime

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REJECT = "reject-the-whole-call"


class ModelAdapter(CrmAdapter):
    """A CRM that is the model; ``script`` errors are raised by the next calls instead of answering."""

    def __init__(self, script: Sequence[Exception] = (), *, merge_everything: bool = False) -> None:
        self.model = CrmModel()
        self.script = deque(script)
        self.calls: list[tuple[str, list[str]]] = []
        self.merge_everything = merge_everything

    def accepts(self, c: CrmCommand) -> bool:
        return self.merge_everything or CrmModel().apply(c) is None or c.op.startswith("activity.")

    async def _run(self, op: str, cmds: Sequence[CrmCommand], gate: Gate) -> list[ItemResult]:
        async with gate(op, f"/{op}") as record:
            self.calls.append((op, [c.command_id for c in cmds]))
            if self.script:
                record.status = 503
                raise self.script.popleft()
            if any(c.properties.get("city") == REJECT for c in cmds):
                record.status = 400
                body = orjson.dumps({"category": "VALIDATION_ERROR", "message": f"bad city {REJECT}"})
                values = [str(v) for c in cmds for v in c.properties.values()]
                raise_for_answer(400, body, None, what=op, secrets=values)
            record.status = 200
        return [ItemResult(c.command_id, self.model.apply(c)) for c in cmds]

    async def upsert_contacts(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        return await self._run("contact.upsert", cmds, gate)

    async def archive_contacts(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        return await self._run("contact.archive", cmds, gate)

    async def erase_contacts(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        return await self._run("contact.erase", cmds, gate)

    async def upsert_activities(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        return await self._run("activity.upsert", cmds, gate)

    async def delete_activities(self, cmds: Sequence[CrmCommand], gate: Gate = open_gate) -> list[ItemResult]:
        return await self._run("activity.delete", cmds, gate)

    def batch_limit(self, op: CommandOp) -> int:
        return 1 if op == "contact.erase" else 4


class Recorder:
    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.sizes: list[int] = []
        self.waits: list[float] = []
        self.breaker: list[str] = []
        self.acks: list[float] = []

    def call(self, op: str, status: str) -> None:
        self.calls[(op, status)] += 1

    def commands(self, op: str, outcome: str, count: int) -> None:
        self.outcomes[(op, outcome)] += count

    def batch_size(self, op: str, size: int) -> None:
        self.sizes.append(size)

    def rate_limit_wait(self, seconds: float) -> None:
        self.waits.append(seconds)

    def breaker_state(self, state: str) -> None:
        self.breaker.append(state)

    def ack_latency(self, seconds: float) -> None:
        self.acks.append(seconds)


def make_sink(
    adapter: CrmAdapter, clock: FakeTime, hooks: Recorder | None = None, **config: float
) -> CrmSink:
    limiter = RateLimiter(5, 10.0, clock=clock, sleep=clock.sleep)
    return CrmSink(
        adapter,
        limiter,
        SinkConfig(breaker_failures=3, breaker_reset=20.0, **config),  # type: ignore[arg-type]
        clock=lambda: NOW + timedelta(seconds=2),
        monotonic=clock,
        sleep=clock.sleep,
        hooks=hooks,
        rng=random.Random(5),
    )


def workload() -> list[CrmCommand]:
    out = []
    for i in range(30):
        contact = f"u{i % 6}"
        if i % 10 == 7:
            out.append(cmd(i, "contact.archive", contact, {"vome_status": "archived"}))
        elif i % 5 == 3:
            out.append(cmd(i, "activity.upsert", contact, {"title": f"t{i}"}, activity_id=f"a{i % 4}"))
        else:
            out.append(
                cmd(i, "contact.upsert", contact, {"firstname": f"n{i}", "city": None if i % 4 else "Brno"})
            )
    return out


async def test_an_outage_and_rate_limits_lose_nothing_and_change_nothing() -> None:
    clock = FakeTime()
    hooks = Recorder()
    failures: list[Exception] = [RetriableSinkError("down", code="CRM-503") for _ in range(6)]
    failures += [BackpressureError("slow down", retry_after=42.0), RetriableSinkError("timeout")]
    adapter = ModelAdapter(failures)
    sink = make_sink(adapter, clock, hooks)
    commands = workload()
    dead = await sink.write(commands)
    state, refused = expected_state(commands)
    assert refused and {d.command.command_id for d in dead} == set(refused)
    assert adapter.model.snapshot() == state
    assert not adapter.script
    assert 42.0 in clock.slept
    assert "open" in hooks.breaker and hooks.breaker[-1] == "closed"
    assert sum(n for (_, outcome), n in hooks.outcomes.items() if outcome == "acknowledged") == len(
        commands
    ) - len(refused)
    assert hooks.calls[("contact.upsert", "503")] >= 1
    assert len(hooks.acks) == len(commands) - len(refused) and all(
        a == pytest.approx(2.0) for a in hooks.acks
    )


async def test_the_breaker_makes_the_sink_wait_not_drop() -> None:
    clock = FakeTime()
    adapter = ModelAdapter([RetriableSinkError("down") for _ in range(12)])
    sink = make_sink(adapter, clock)
    start = clock()
    commands = [cmd(1, "contact.upsert", "u1", {"firstname": "Ana"})]
    assert await sink.write(commands) == []
    assert clock() - start >= 20.0
    assert len(adapter.calls) == 13
    assert adapter.model.snapshot() == expected_state(commands)[0]


async def test_a_429_answering_the_probe_closes_the_breaker_instead_of_holding_it() -> None:
    clock = FakeTime()
    hooks = Recorder()
    script: list[Exception] = [RetriableSinkError("down") for _ in range(3)]
    adapter = ModelAdapter([*script, BackpressureError("busy", retry_after=1.0)])
    sink = make_sink(adapter, clock, hooks)
    start = clock()
    assert await sink.write([cmd(1, "contact.upsert", "u1", {"firstname": "Ana"})]) == []
    assert 20.0 <= clock() - start < 30.0
    assert hooks.breaker[-1] == "closed" and len(adapter.calls) == 5


async def test_give_up_after_raises_the_last_retriable_error_for_the_caller_to_redeliver() -> None:
    clock = FakeTime()
    adapter = ModelAdapter([RetriableSinkError("down", code="CRM-503") for _ in range(100)])
    sink = make_sink(adapter, clock, give_up_after=60.0)
    with pytest.raises(RetriableSinkError) as info:
        await sink.write([cmd(1, "contact.upsert", "u1", {"firstname": "Ana"})])
    assert info.value.code == "CRM-503"
    assert clock.slept and sum(clock.slept) >= 60.0


async def test_a_refused_call_is_split_until_only_the_bad_command_is_dead_lettered() -> None:
    clock = FakeTime()
    hooks = Recorder()
    adapter = ModelAdapter()
    sink = make_sink(adapter, clock, hooks)
    commands = [cmd(i, "contact.upsert", f"u{i}", {"city": REJECT if i == 2 else "Oslo"}) for i in range(4)]
    dead = await sink.write(commands)
    assert [d.command.command_id for d in dead] == ["cmd-000002"]
    assert dead[0].status == 400 and dead[0].code == "CRM-400"
    body = orjson.loads(dead[0].body)
    assert body["category"] == "VALIDATION_ERROR" and REJECT not in dead[0].body
    assert len(adapter.calls) == 1 + 2 + 2
    assert (
        adapter.model.snapshot() == expected_state([c for c in commands if c.command_id != "cmd-000002"])[0]
    )
    assert hooks.outcomes[("contact.upsert", "acknowledged")] == 3
    assert hooks.outcomes[("contact.upsert", "dead_lettered")] == 1


async def test_a_refused_merged_input_is_resent_command_by_command() -> None:
    clock = FakeTime()
    adapter = ModelAdapter(merge_everything=True)
    sink = make_sink(adapter, clock)
    commands = [
        cmd(1, "contact.upsert", "u1", {"firstname": "Ana"}),
        cmd(2, "contact.upsert", "u1", {"email": "not-an-email"}),
        cmd(3, "contact.upsert", "u1", {"city": "Oslo"}),
    ]
    dead = await sink.write(commands)
    assert [d.command.command_id for d in dead] == ["cmd-000002"]
    assert adapter.model.snapshot() == expected_state(commands)[0]
    assert "not-an-email" not in dead[0].body


async def test_an_activity_for_an_unknown_contact_is_dead_lettered_with_the_crm_reason() -> None:
    clock = FakeTime()
    adapter = ModelAdapter()
    sink = make_sink(adapter, clock)
    dead = await sink.write([cmd(1, "activity.upsert", "ghost", {"title": "x"}, activity_id="a1")])
    assert [(d.status, orjson.loads(d.body)["category"]) for d in dead] == [(404, "OBJECT_NOT_FOUND")]


async def test_batches_respect_the_adapter_limit_and_the_rate_limit_is_reported() -> None:
    clock = FakeTime()
    hooks = Recorder()
    adapter = ModelAdapter()
    sink = make_sink(adapter, clock, hooks)
    commands = [cmd(i, "contact.upsert", f"u{i}", {"city": "Oslo"}) for i in range(40)]
    assert await sink.write(commands) == []
    assert hooks.sizes == [4] * 10
    assert sum(hooks.waits) >= 10.0
    assert hooks.calls[("contact.upsert", "200")] == 10


async def test_prometheus_hooks_count_calls_commands_and_waits() -> None:
    registry = CollectorRegistry()
    clock = FakeTime()
    adapter = ModelAdapter([RetriableSinkError("down")])
    sink = make_sink(adapter, clock)
    sink.hooks = PrometheusHooks(CrmMetrics(registry))
    commands = [cmd(i, "contact.upsert", f"u{i}", {"city": "Oslo"}) for i in range(24)]
    commands.append(cmd(99, "activity.upsert", "ghost", {"title": "x"}, activity_id="a1"))
    assert len(await sink.write(commands)) == 1

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert value("switchyard_crm_calls_total", op="contact.upsert", status="503") == 1
    assert value("switchyard_crm_calls_total", op="contact.upsert", status="200") == 6
    assert value("switchyard_crm_commands_total", op="contact.upsert", outcome="acknowledged") == 24
    assert value("switchyard_crm_commands_total", op="activity.upsert", outcome="dead_lettered") == 1
    assert value("switchyard_crm_batch_size_count") == 6 + 1
    assert value("switchyard_crm_rate_limit_wait_seconds_total") >= 10.0
    assert value("switchyard_crm_ack_seconds_count") == 24


def test_retry_after_is_read_as_seconds_or_http_date() -> None:
    assert parse_retry_after("7", NOW) == 7.0
    assert parse_retry_after(" 1.5 ", NOW) == 1.5
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", NOW) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", NOW) == 0.0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (429, BackpressureError, "CRM-429"),
        (500, RetriableSinkError, "CRM-500"),
        (503, RetriableSinkError, "CRM-503"),
        (408, RetriableSinkError, "CRM-408"),
        (401, RetriableSinkError, "CRM-AUTH"),
        (400, PermanentSinkError, "CRM-400"),
        (404, PermanentSinkError, "CRM-404"),
    ],
)
def test_http_answers_map_onto_the_error_tree(status: int, kind: type[Exception], code: str) -> None:
    with pytest.raises(kind) as info:
        raise_for_answer(status, b'{"category": "X", "message": "m"}', 3.0, what="op")
    assert type(info.value) is kind and getattr(info.value, "code", None) == code
    if status == 429:
        assert getattr(info.value, "retry_after", None) == 3.0


def test_success_answers_raise_nothing_and_refusal_bodies_are_scrubbed() -> None:
    raise_for_answer(207, b"{}", None, what="op")
    with pytest.raises(PermanentSinkError) as info:
        raise_for_answer(
            409,
            b'{"category": "CONFLICT", "message": "Contact ana@example.org exists", '
            b'"errors": [{"code": "CONFLICT", "in": "email"}]}',
            None,
            what="op",
            secrets=["ana@example.org"],
        )
    body = orjson.loads(info.value.body)
    assert body == {
        "category": "CONFLICT",
        "message": "Contact <redacted> exists",
        "codes": ["CONFLICT@email"],
    }
    assert info.value.status == 409
    assert redact("a-b", ["a", "b"]) == "a-b"


async def test_a_command_naming_an_id_longer_than_the_crm_holds_is_dead_lettered_alone_without_a_call() -> (
    None
):
    """An e-mail may have 320 characters, a CRM id 255: only the command that cannot be carried is refused,
    with CRM-ID-TOO-LONG and no HTTP status (it never reached the CRM); the others go through."""
    clock, adapter, hooks = FakeTime(), ModelAdapter(), Recorder()
    long_email = "c" * 300 + "@example.org"
    batch = [
        cmd(1, "contact.upsert", "ok@example.org", {"firstname": "Ana"}, id_property="email"),
        cmd(2, "contact.upsert", long_email, {"firstname": "Bo"}, id_property="email"),
        cmd(3, "activity.upsert", long_email, {"title": "t"}, activity_id="apt-1", id_property="email"),
        cmd(
            4, "activity.upsert", "ok@example.org", {"title": "t"}, activity_id="a" * 256, id_property="email"
        ),
        cmd(
            5, "activity.upsert", "ok@example.org", {"title": "t"}, activity_id="a" * 255, id_property="email"
        ),
    ]
    dead = await make_sink(adapter, clock, hooks).write(batch)
    assert [(d.command.command_id, d.code, d.status) for d in dead] == [
        ("cmd-000002", "CRM-ID-TOO-LONG", None),
        ("cmd-000003", "CRM-ID-TOO-LONG", None),
        ("cmd-000004", "CRM-ID-TOO-LONG", None),
    ]
    assert [d.body for d in dead] == [
        "contact_id is longer than the 255 characters the CRM holds",
        "contact_id is longer than the 255 characters the CRM holds",
        "activity_id is longer than the 255 characters the CRM holds",
    ]
    sent = {i for _op, ids in adapter.calls for i in ids}
    assert sent == {"cmd-000001", "cmd-000005"}
    assert hooks.outcomes[("contact.upsert", "dead_lettered")] == 1
    assert hooks.outcomes[("activity.upsert", "dead_lettered")] == 2
