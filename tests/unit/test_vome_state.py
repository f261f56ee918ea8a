"""The ``volunteers`` table fold: transitions, deletion markers, staleness, erasure and idempotency."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.errors import ValidationFailed
from app.core.records import EVENT_TYPE_HEADER, Folded, RawRecord
from app.domains.vome.enrich import TRIGGERS
from app.domains.vome.generate import generate
from app.domains.vome.rules import RULES, process, route
from app.domains.vome.state import (
    FEED_TOPIC,
    SNAPSHOT_TOPIC,
    FeedValue,
    fold_volunteer,
    is_erased,
    render,
    snapshot,
)
from app.sinks.crm.commands import CrmCommand

NOW = datetime(2026, 1, 1, tzinfo=UTC)
USER = "u-1"


def value(trigger: str, entity: str = "e-1", **extra: Any) -> dict[str, Any]:
    kind, op = trigger.split(".")
    return {"event_id": f"{trigger}:{entity}:{extra}", "trigger": trigger, "user_id": USER, "entity_id": entity,
            "kind": kind, "op": op, **extra}  # fmt: skip


def form(op: str, sub: str, status: str, at: str) -> dict[str, Any]:
    return value(f"form_submission.{op}", sub, form_id="f-1", status=status, submitted_at=at)


def seq(op: str, asg: str, done: int, total: int, at: str) -> dict[str, Any]:
    return value(
        f"sequence_assignment.{op}", asg, sequence_id="s-1", steps_done=done, steps_total=total, updated_at=at
    )


def fold_all(values: list[dict[str, Any] | None], state: Any = None) -> tuple[Any, list[Folded]]:
    results = []
    for v in values:
        folded = fold_volunteer(state, v, NOW)
        results.append(folded)
        if folded.changed:
            state = folded.state
    return state, results


def last_snapshot(results: list[Folded]) -> dict[str, Any]:
    emitted = [e for r in results for e in r.emits]
    assert emitted[-1].topic == SNAPSHOT_TOPIC and emitted[-1].key == USER
    snap: dict[str, Any] = emitted[-1].value
    return snap


def test_a_volunteer_journey() -> None:
    state, results = fold_all(
        [
            value("profile.created", USER),
            value("booking.created", "b-1"),
            value("booking.created", "b-2"),
            value("booking.updated", "b-2"),
            value("booking.deleted", "b-1"),
            form("created", "sub-1", "submitted", "2025-03-10T18:23:00Z"),
            form("updated", "sub-1", "approved", "2025-03-10T18:23:00Z"),
            seq("created", "a-1", 0, 3, "2025-03-12T09:00:00Z"),
            seq("updated", "a-1", 1, 3, "2025-03-20T16:30:00Z"),
            value("profile.archived", USER),
        ]
    )
    assert [r.changed for r in results] == [True, True, True, False, True, True, True, True, True, True]
    assert last_snapshot(results) == {
        "user_id": USER,
        "has_profile": True,
        "archived": True,
        "bookings_count": 1,
        "latest_form": {
            "submission_id": "sub-1",
            "form_id": "f-1",
            "status": "approved",
            "submitted_at": "2025-03-10T18:23:00Z",
        },
        "onboarding": {"assignments": 1, "steps_done": 1, "steps_total": 3},
        "updated_at": "2026-01-01T00:00:00Z",
    }
    assert state["last_event_id"] == value("profile.archived", USER)["event_id"]


def test_the_same_value_twice_changes_nothing_the_second_time() -> None:
    for v in [value("profile.created", USER), value("booking.created", "b-1"), form("created", "s", "x", "2025-01-01T00:00:00Z"),
              seq("updated", "a", 1, 2, "2025-01-01T00:00:00Z"), value("booking.deleted", "b-9")]:  # fmt: skip
        once = fold_volunteer(None, v, NOW)
        twice = fold_volunteer(once.state, v, NOW)
        assert once.changed and once.emits
        assert (twice.changed, list(twice.emits), twice.state) == (False, [], once.state)


def test_deleted_entities_stay_deleted() -> None:
    _, results = fold_all(
        [
            value("booking.created", "b-1"),
            value("booking.deleted", "b-1"),
            value("booking.updated", "b-1"),
            form("created", "sub-1", "submitted", "2025-03-10T18:23:00Z"),
            form("deleted", "sub-1", "submitted", "2025-03-10T18:23:00Z"),
            form("updated", "sub-1", "approved", "2025-03-10T18:23:00Z"),
            seq("deleted", "a-1", 0, 0, "2025-03-12T09:00:00Z"),
            seq("created", "a-1", 1, 3, "2025-03-12T09:00:00Z"),
        ]
    )
    assert [r.changed for r in results] == [True, True, False, True, True, False, True, False]
    snap = last_snapshot(results)
    assert (snap["bookings_count"], snap["latest_form"], snap["onboarding"]["assignments"]) == (0, None, 0)


def test_an_older_assignment_update_is_stale() -> None:
    state, results = fold_all(
        [
            seq("updated", "a-1", 2, 3, "2025-03-20T16:30:00Z"),
            seq("updated", "a-1", 1, 3, "2025-03-20T17:30:00+02:00"),
        ]
    )
    assert not results[1].changed
    assert state["sequences"]["a-1"]["steps_done"] == 2


def test_latest_form_is_the_latest_submitted_and_survives_deleting_another() -> None:
    state, results = fold_all(
        [
            form("created", "sub-new", "submitted", "2025-04-01T10:00:00Z"),
            form("created", "sub-old", "approved", "2025-03-01T10:00:00+01:00"),
        ]
    )
    assert last_snapshot(results)["latest_form"]["submission_id"] == "sub-new"
    state, results = fold_all([form("deleted", "sub-new", "", "2025-04-01T10:00:00Z")], state)
    assert last_snapshot(results)["latest_form"]["submission_id"] == "sub-old"


def test_profile_created_unarchives_and_updated_keeps_the_flag() -> None:
    state, _ = fold_all([value("profile.archived", USER), value("profile.updated", USER)])
    assert state["archived"] is True
    state, _ = fold_all([value("profile.created", USER)], state)
    assert state["archived"] is False


def command(op: str, event: str, activity: str | None = None, **props: Any) -> dict[str, Any]:
    return CrmCommand(
        command_id=f"{op}-{event}-{activity}".ljust(8, "x"),
        op=op,
        contact_id=USER,
        activity_id=activity,
        properties=props,
        source="vome",
        source_event_id=event,
        issued_at=NOW,
    ).model_dump(mode="json")


ENSURE = command("contact.upsert", "ensure", vome_user_id=USER, firstname="Jana")


def booking(trigger: str, entity: str = "b-1") -> dict[str, Any]:
    op = "activity.delete" if trigger.endswith("deleted") else "activity.upsert"
    ensure = None if trigger.endswith("deleted") else {**ENSURE, "source_event_id": trigger}
    return value(trigger, entity, crm=[command(op, trigger, entity)], ensure=ensure)


def sent(folded: Folded) -> list[tuple[str, str | None]]:
    return [(e.value["op"], e.value["source_event_id"]) for e in folded.emits if e.topic == "crm.commands"]


def test_an_unknown_volunteer_gets_its_contact_before_its_booking_and_only_once() -> None:
    first = fold_volunteer(None, booking("booking.created"), NOW)
    assert sent(first) == [("contact.upsert", "booking.created"), ("activity.upsert", "booking.created")]
    assert all(e.key == USER for e in first.emits)
    second = fold_volunteer(first.state, booking("booking.updated"), NOW)
    assert sent(second) == [("activity.upsert", "booking.updated")]
    assert second.changed is False  # the snapshot did not change; the command is sent all the same
    deleted = fold_volunteer(first.state, booking("booking.deleted"), NOW)
    assert sent(deleted) == [("activity.delete", "booking.deleted")]
    late = fold_volunteer(deleted.state, booking("booking.updated"), NOW)
    assert sent(late) == []  # a deleted booking's late update does not re-create its meeting


def test_a_known_profile_is_not_overwritten_by_a_bookings_copy_of_the_volunteer() -> None:
    profile = value("profile.updated", USER, crm=[command("contact.upsert", "profile", phone="+1 new")])
    state = fold_volunteer(None, profile, NOW)
    assert sent(state) == [("contact.upsert", "profile")]
    later = fold_volunteer(state.state, booking("booking.created"), NOW)
    assert sent(later) == [("activity.upsert", "booking.created")]


def test_erasure_leaves_a_marker_that_keeps_late_events_from_the_crm() -> None:
    state, _ = fold_all([value("profile.created", USER), booking("booking.created")])
    erase = value("profile.deleted", USER, crm=[command("contact.erase", "erase")])
    erased = fold_volunteer(state, erase, NOW)
    assert erased.changed and erased.state == {
        "user_id": USER,
        "erased": True,
        "erased_at": "2026-01-01T00:00:00Z",
    }
    assert [(e.topic, e.value) for e in erased.emits if e.topic == SNAPSHOT_TOPIC] == [(SNAPSHOT_TOPIC, None)]
    assert sent(erased) == [("contact.erase", "erase")]
    for late in (
        booking("booking.created", "b-9"),
        booking("booking.updated"),
        value("profile.created", USER),
    ):
        after = fold_volunteer(erased.state, late, NOW)
        assert (after.changed, after.state, list(after.emits), after.outcome) == (
            False, erased.state, [], "erased"
        )  # fmt: skip
    again = fold_volunteer(erased.state, erase, NOW)
    assert (again.changed, sent(again)) == (False, [("contact.erase", "erase")])
    assert render(erased.state) is None and render(state) == snapshot(state)


def test_a_legacy_feed_tombstone_still_deletes_the_key() -> None:
    state, _ = fold_all([value("profile.created", USER), value("booking.created", "b-1")])
    erased = fold_volunteer(state, None, NOW)
    assert erased.changed and erased.state is None
    assert [(e.topic, e.key, e.value) for e in erased.emits] == [(SNAPSHOT_TOPIC, USER, None)]
    nothing = fold_volunteer(None, None, NOW)
    assert (nothing.changed, nothing.state, list(nothing.emits)) == (False, None, [])


@pytest.mark.parametrize(
    "broken",
    [
        {"kind": "booking"},
        {**value("booking.created"), "kind": "meeting"},
        {**value("booking.created"), "user_id": ""},
        {**value("booking.created"), "unexpected": 1},
    ],
)
def test_a_malformed_feed_value_is_rejected(broken: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        fold_volunteer(None, broken, NOW)


def test_fold_never_reads_the_clock() -> None:
    later = datetime(2030, 6, 1, tzinfo=UTC)
    folded = fold_volunteer(None, value("booking.created"), later)
    assert folded.state["updated_at"] == "2030-06-01T00:00:00Z"
    assert fold_volunteer(None, value("booking.created"), later) == folded


_VALUES = st.sampled_from(
    [
        value("profile.created", USER),
        value("profile.updated", USER),
        value("profile.archived", USER),
        value("booking.created", "b-1"),
        value("booking.updated", "b-1"),
        value("booking.deleted", "b-1"),
        value("booking.created", "b-2"),
        form("created", "sub-1", "submitted", "2025-03-10T18:23:00Z"),
        form("updated", "sub-1", "approved", "2025-03-10T18:23:00Z"),
        form("deleted", "sub-1", "approved", "2025-03-10T18:23:00Z"),
        form("created", "sub-2", "submitted", "2025-03-11T18:23:00Z"),
        seq("created", "a-1", 0, 3, "2025-03-12T09:00:00Z"),
        seq("updated", "a-1", 2, 3, "2025-03-14T09:00:00Z"),
        seq("updated", "a-1", 1, 3, "2025-03-13T09:00:00Z"),
        seq("deleted", "a-1", 0, 0, "2025-03-15T09:00:00Z"),
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_VALUES, max_size=25), st.data())
def test_redelivering_any_suffix_leaves_the_same_state(
    values: list[dict[str, Any]], data: st.DataObject
) -> None:
    """Stage one at-least-once replays a suffix of what it produced, in order: the state must not notice."""
    once, _ = fold_all(list(values))
    cut = data.draw(st.integers(0, len(values)))
    replayed, _ = fold_all([*values, *values[cut:]])
    if once is None:
        assert replayed is None
    else:
        strip = ("updated_at", "last_event_id")
        assert {k: v for k, v in replayed.items() if k not in strip} == {
            k: v for k, v in once.items() if k not in strip
        }


def test_route_then_fold_over_generated_traffic() -> None:
    """Feed values produced by ``route`` fold; each user's bookings count matches the bookings routed."""
    tables: dict[str, Any] = {}
    expected: dict[str, dict[str, bool]] = {}
    for g in generate(random.Random(11), 400, invalid_share=0.0):
        processed = process(g.raw(), NOW)
        for emit in route(processed, NOW):
            if emit.topic != FEED_TOPIC:
                continue
            assert isinstance(emit.key, str)
            folded = fold_volunteer(tables.get(emit.key), emit.value, NOW)
            if folded.changed:
                tables[emit.key] = folded.state
            if is_erased(folded.state):
                expected.pop(emit.key, None)
            elif processed.event_type.startswith("booking."):
                bookings = expected.setdefault(emit.key, {})
                if bookings.get(processed.enriched["entity_id"]) is not False:
                    bookings[processed.enriched["entity_id"]] = processed.event_type != "booking.deleted"
    assert tables and any(is_erased(s) for s in tables.values())
    for user, state in tables.items():
        if is_erased(state):
            assert user not in expected
        else:
            assert sum(state["bookings"].values()) == sum(expected.get(user, {}).values())


def test_feed_values_are_the_models_own_json() -> None:
    """Stage one builds the feed value without validating it (the fold does, on the way in): what it builds must
    be exactly what :class:`FeedValue` would dump, every field present, for every trigger."""
    triggers = set()
    raws = [g.raw() for g in generate(random.Random(5), 600, invalid_share=0.0)]
    raws += [
        RawRecord(value=s.value, headers=((EVENT_TYPE_HEADER, (s.event_type or "").encode()),))
        for s in RULES.samples()
    ]
    for raw in raws:
        processed = process(raw, NOW)
        [feed] = [e for e in route(processed, NOW) if e.topic == FEED_TOPIC]
        assert feed.value == FeedValue.model_validate(feed.value).model_dump(mode="json")
        triggers.add(processed.event_type)
    assert triggers == set(TRIGGERS)


def test_samples_fold_into_one_coherent_volunteer() -> None:
    order = [
        "profile.created--new-volunteer",
        "booking.created--food-bank-shift",
        "booking.updated--hours-approved",
        "booking.deleted--cancelled-shift",
        "form_submission.created--volunteer-application",
        "form_submission.updated--application-approved",
        "sequence_assignment.created--new-volunteer-onboarding",
        "sequence_assignment.updated--orientation-completed",
    ]
    samples = {s.name: s for s in RULES.samples()}
    state: Any = None
    snap: dict[str, Any] = {}
    for name in order:
        s = samples[name]
        raw = RawRecord(value=s.value, headers=((EVENT_TYPE_HEADER, (s.event_type or "").encode()),))
        [feed] = [e for e in route(process(raw, NOW), NOW) if e.topic == FEED_TOPIC]
        folded = fold_volunteer(state, json.loads(json.dumps(feed.value)), NOW)
        state = folded.state
        snap = next((e.value for e in folded.emits if e.topic == SNAPSHOT_TOPIC), snap)
    assert snap["bookings_count"] == 1
    assert snap["latest_form"]["status"] == "approved"
    assert (snap["onboarding"]["steps_done"], snap["onboarding"]["steps_total"]) == (1, 3)
