"""The call planner: executing its plan equals executing the commands one by one, with few calls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.sinks.crm.batching import Call, _reads, _writes, plan
from app.sinks.crm.commands import CrmCommand, PropertyValue
from app.sinks.crm.hubspot import HubSpotAdapter
from app.sinks.crm.model import CrmModel

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CONTACTS = ["u1", "u2", "u3"]


def cmd(
    i: int, op: str, contact: str, props: dict[str, PropertyValue] | None = None, **kw: Any
) -> CrmCommand:
    return CrmCommand(
        command_id=f"cmd-{i:06d}",
        op=op,
        contact_id=contact,
        properties=props or {},
        source="test",
        source_event_id=f"ev-{i}",
        issued_at=NOW,
        **kw,
    )


def _contact_props(contact: str, id_property: str) -> st.SearchStrategy[dict[str, PropertyValue]]:
    return st.dictionaries(
        st.sampled_from(["firstname", "city", "email", "vome_onboarding_steps_done", "vome_status"]),
        st.none(),
        max_size=4,
    ).flatmap(
        lambda keys: st.fixed_dictionaries(
            {
                k: {
                    "firstname": st.sampled_from(["Ana", "Bo", None]),
                    "city": st.sampled_from(["Brno", "Oslo", None]),
                    "email": st.sampled_from(
                        [
                            f"{contact}.{id_property}@example.org",
                            f"{contact}.{id_property}.2@example.org",
                            "not-an-email",
                        ]
                    ),
                    "vome_onboarding_steps_done": st.sampled_from([1, 2, 3.5, None, "many"]),
                    "vome_status": st.sampled_from(["active", "archived", None]),
                }[k]
                for k in keys
            }
        )
    )


_ACTIVITY_PROPS = st.fixed_dictionaries(
    {},
    optional={
        "title": st.sampled_from(["Shift", "Visit", None]),
        "status": st.sampled_from(["SCHEDULED", "COMPLETED", "REQUESTED", "BOGUS", None]),
        "hours_approved": st.sampled_from([1, 2.5, None]),
        "start": st.sampled_from(["2026-03-01T10:00:00Z", "yesterday", None]),
    },
)


@st.composite
def command_lists(draw: st.DrawFn) -> list[CrmCommand]:
    n = draw(st.integers(0, 40))
    out: list[CrmCommand] = []
    for i in range(n):
        contact = draw(st.sampled_from(CONTACTS))
        id_property = draw(st.sampled_from(["vome_user_id", "vome_user_id", "vome_user_id", "external_id"]))
        op = draw(
            st.sampled_from(
                ["contact.upsert"] * 6
                + ["contact.archive", "contact.erase"]
                + ["activity.upsert"] * 3
                + ["activity.delete"]
            )
        )
        if op.startswith("activity."):
            props = draw(_ACTIVITY_PROPS) if op == "activity.upsert" else {}
            activity = draw(st.sampled_from(["a1", "a2", "a3", "a4"]))
            out.append(cmd(i, op, contact, props, activity_id=activity, id_property=id_property))
        else:
            props = draw(_contact_props(contact, id_property)) if op != "contact.erase" else {}
            out.append(cmd(i, op, contact, props, id_property=id_property))
    return out


def local_ok(c: CrmCommand) -> bool:
    """What the HubSpot adapter's ``accepts`` checks: values of the types the CRM defines."""
    return HubSpotAdapter.accepts_command(c)


def run_plan(calls: list[Call]) -> tuple[dict[str, Any], set[str]]:
    """What the sink does with a plan: each input applied; a refused merged input re-sent source by source."""
    model = CrmModel()
    refused: set[str] = set()
    for call in calls:
        for item in call.items:
            err = model.apply(item.command)
            if err is None:
                continue
            if len(item.sources) == 1:
                refused.add(item.command.command_id)
                continue
            for src in item.sources:
                if model.apply(src) is not None:
                    refused.add(src.command_id)
    return model.snapshot(), refused


def run_sequential(commands: list[CrmCommand]) -> tuple[dict[str, Any], set[str]]:
    model = CrmModel()
    refused = {c.command_id for c in commands if model.apply(c) is not None}
    return model.snapshot(), refused


def _conflict(a: CrmCommand, b: CrmCommand) -> bool:
    wa, wb = set(_writes(a)), set(_writes(b))
    return bool(wa & (wb | set(_reads(b))) or wb & set(_reads(a)))


@settings(max_examples=250, deadline=None)
@given(command_lists(), st.integers(1, 5))
def test_plan_has_the_effect_of_the_commands_in_order(commands: list[CrmCommand], limit: int) -> None:
    assert run_plan(plan(commands, limit, local_ok)) == run_sequential(commands)


@settings(max_examples=150, deadline=None)
@given(command_lists(), st.integers(1, 5))
def test_plan_shape_every_command_once_batches_bounded_conflicts_ordered(
    commands: list[CrmCommand], limit: int
) -> None:
    calls = plan(commands, limit)
    where: dict[str, tuple[int, int, int]] = {}
    for c_index, call in enumerate(calls):
        assert 1 <= len(call.items) <= limit
        assert all(
            item.command.op == call.op and all(s.op == call.op for s in item.sources) for item in call.items
        )
        for i_index, item in enumerate(call.items):
            for s_index, src in enumerate(item.sources):
                assert src.command_id not in where
                where[src.command_id] = (c_index, i_index, s_index)
        for x in range(len(call.items)):
            for y in range(x + 1, len(call.items)):
                assert not _conflict(call.items[x].command, call.items[y].command)
    assert set(where) == {c.command_id for c in commands}
    for i, a in enumerate(commands):
        for b in commands[i + 1 :]:
            if _conflict(a, b):
                pa, pb = where[a.command_id], where[b.command_id]
                assert pa[0] < pb[0] or (pa[:2] == pb[:2] and pa[2] < pb[2]), (a, b)


def test_upserts_of_one_contact_coalesce_later_values_and_clears_win() -> None:
    commands = [
        cmd(1, "contact.upsert", "u1", {"firstname": "Ana", "city": "Brno"}),
        cmd(2, "contact.upsert", "u1", {"city": None, "vome_status": "active"}),
        cmd(3, "contact.upsert", "u1", {"firstname": "Bo"}),
    ]
    [call] = plan(commands)
    [item] = call.items
    assert item.command.properties == {"firstname": "Bo", "city": None, "vome_status": "active"}
    assert [s.command_id for s in item.sources] == ["cmd-000001", "cmd-000002", "cmd-000003"]
    assert item.command.command_id not in {c.command_id for c in commands}
    assert plan(commands)[0].items[0].command.command_id == item.command.command_id


def test_an_erase_between_upserts_is_never_crossed() -> None:
    commands = [
        cmd(1, "contact.upsert", "u1", {"firstname": "Ana"}),
        cmd(2, "contact.upsert", "u2", {"firstname": "Bo"}),
        cmd(3, "contact.erase", "u1"),
        cmd(4, "contact.upsert", "u1", {"city": "Oslo"}),
        cmd(5, "contact.upsert", "u2", {"city": "Oslo"}),
    ]
    calls = plan(commands)
    assert [(c.op, [s.command_id[-1] for s in c.sources]) for c in calls] == [
        ("contact.upsert", ["1", "2", "5"]),
        ("contact.erase", ["3"]),
        ("contact.upsert", ["4"]),
    ]


def test_activities_of_one_contact_share_a_batch_but_wait_for_the_contact() -> None:
    commands = [
        cmd(1, "contact.upsert", "u1", {"firstname": "Ana"}),
        cmd(2, "activity.upsert", "u1", {"title": "A"}, activity_id="a1"),
        cmd(3, "activity.upsert", "u1", {"title": "B"}, activity_id="a2"),
        cmd(4, "activity.delete", "u1", activity_id="a1"),
    ]
    calls = plan(commands)
    assert [(c.op, len(c.items)) for c in calls] == [
        ("contact.upsert", 1),
        ("activity.upsert", 2),
        ("activity.delete", 1),
    ]


def test_many_contacts_fill_batches_to_the_limit() -> None:
    commands = [cmd(i, "contact.upsert", f"u{i % 250}", {"city": f"c{i}"}) for i in range(1000)]
    calls = plan(commands, 100)
    assert [len(c.items) for c in calls] == [100, 100, 50]
    assert sum(len(c.sources) for c in calls) == 1000


def test_a_batch_limit_per_op() -> None:
    commands = [cmd(i, "contact.erase", f"u{i}") for i in range(3)] + [
        cmd(10 + i, "contact.upsert", f"u{10 + i}") for i in range(3)
    ]
    calls = plan(commands, lambda op: 1 if op == "contact.erase" else 100)
    assert [(c.op, len(c.items)) for c in calls] == [
        ("contact.erase", 1),
        ("contact.erase", 1),
        ("contact.erase", 1),
        ("contact.upsert", 3),
    ]


def test_two_contacts_claiming_one_email_keep_their_order() -> None:
    commands = [
        cmd(1, "contact.upsert", "u1", {"email": "same@example.org"}),
        cmd(2, "contact.upsert", "u2", {"email": "same@example.org"}),
    ]
    assert len(plan(commands)) == 2
    assert run_plan(plan(commands)) == run_sequential(commands)


def test_an_activity_for_an_archived_contact_is_refused_with_its_own_code_until_restored() -> None:
    from app.sinks.crm.base import CONTACT_ARCHIVED, CONTACT_NOT_FOUND
    from app.sinks.crm.model import expected_state

    commands = [
        cmd(1, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b0"),
        cmd(2, "contact.archive", "u1", {"vome_status": "archived"}),
        cmd(3, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b1"),
        cmd(4, "contact.upsert", "u1", {"vome_status": "active"}),
        cmd(5, "activity.upsert", "u1", {"title": "Shift"}, activity_id="b2"),
    ]
    state, refused = expected_state(commands)
    assert refused == {"cmd-000001": CONTACT_NOT_FOUND, "cmd-000003": CONTACT_ARCHIVED}
    assert (CONTACT_NOT_FOUND.code, CONTACT_ARCHIVED.code) == ("CRM-404", "CRM-CONTACT-ARCHIVED")
    assert [m["properties"]["switchyard_activity_id"] for m in state["meetings"]] == ["b2"]
    assert state["contacts"][0]["archived"] is False
