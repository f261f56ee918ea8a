"""The CRM benchmark's two figures, from a scripted call log (no server, no clock), and the reference CRM's
look-ups that used to set its pace."""

from __future__ import annotations

import pytest

from app.sinks.crm.benchmark import CallCounter
from app.sinks.crm.properties import UNIQUE_CONTACT_PROPERTIES
from app.sinks.crm.reference import CrmStore, _json_path


def counter_with(ends: list[float], op: str = "contact.upsert") -> CallCounter:
    times = iter(ends)
    counter = CallCounter(monotonic=lambda: next(times))
    for _ in ends:
        counter.call(op, "200")
    return counter


def test_a_sink_spending_every_slot_uses_the_whole_budget_whatever_the_last_window_holds() -> None:
    # 4 calls per 1 s window, back to back for 3 windows, then a tail of 1 call: the tail is not counted.
    ends = [w + i * 0.01 for w in range(3) for i in range(4)] + [3.0]
    assert counter_with(ends).budget_used(limit=4, window=1.0) == 1.0


def test_a_sink_that_idles_half_of_each_window_shows_it() -> None:
    ends = [w + i * 0.01 for w in range(4) for i in range(2)] + [4.0]
    assert counter_with(ends).budget_used(limit=4, window=1.0) == pytest.approx(0.5)


def test_a_backlog_shorter_than_one_window_has_no_budget_figure() -> None:
    assert counter_with([0.0, 0.1, 0.2]).budget_used(limit=4, window=1.0) is None
    assert CallCounter().budget_used(limit=4, window=1.0) is None


def test_contacts_per_call_counts_contact_records_over_the_calls_spent_on_contacts() -> None:
    counter = CallCounter(monotonic=lambda: 0.0)
    counter.batch_size("contact.upsert", 100)
    counter.batch_size("contact.upsert", 60)
    counter.batch_size("contact.archive", 10)  # an archive is two calls: upsert then archive by id
    counter.batch_size("activity.upsert", 80)  # meetings: not contacts, and their calls are not counted
    for op in ["contact.upsert"] * 2 + ["contact.archive"] * 2 + ["activity.upsert"] * 3:
        counter.call(op, "200")
    assert counter.contacts_per_call() == pytest.approx(170 / 4)


@pytest.mark.parametrize("name", sorted(UNIQUE_CONTACT_PROPERTIES))
def test_the_reference_crm_finds_a_contact_by_a_unique_property_through_its_index(name: str) -> None:
    store = CrmStore()
    try:
        plan = store.db.execute(
            "EXPLAIN QUERY PLAN SELECT id, properties, archived FROM contacts"
            f" WHERE json_extract(properties, '{_json_path(name)}') = ?",
            ("x",),
        ).fetchall()
    finally:
        store.close()
    assert any(f"USING INDEX contacts_by_{name}" in row[-1] for row in plan), plan
