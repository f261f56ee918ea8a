"""The fetch guard's per-record decision (app/core/fetchguard.py): what is delivered, dropped, fetched again, and
which holes are booked as gaps."""

from __future__ import annotations

import pytest

from app.core.fetchguard import Decision, Verdict, decide


def test_a_record_fetched_before_the_latest_seek_is_fetched_again_never_delivered() -> None:
    assert decide(150, 100, stale=True, changelog=False) == Decision(Verdict.REFETCH)
    # even when it looks like the next one due: its batch may have come from the old position
    assert decide(101, 100, stale=True, changelog=False) == Decision(Verdict.REFETCH)


def test_changelog_records_keep_fausts_handling_when_stale() -> None:
    assert decide(101, 100, stale=True, changelog=True) == Decision(Verdict.DELIVER)


@pytest.mark.parametrize(
    ("offset", "read", "expected"),
    [
        (100, None, Decision(Verdict.DELIVER)),  # nothing read yet
        (100, 100, Decision(Verdict.DELIVER)),  # a seek put the position at 100: the record at it is due
        (101, 100, Decision(Verdict.DELIVER)),
        (99, 100, Decision(Verdict.DROP)),  # already delivered from this position
        (0, 0, Decision(Verdict.DELIVER)),
    ],
)
def test_in_sequence_records(offset: int, read: int | None, expected: Decision) -> None:
    assert decide(offset, read, stale=False, changelog=False) == expected


def test_a_hole_in_one_fetch_sequence_is_booked_without_the_record_that_ends_it() -> None:
    # 101..104 are transaction markers or compacted away; 105 is acknowledged when processed, not by the gap
    assert decide(105, 100, stale=False, changelog=False) == Decision(Verdict.DELIVER, gap=(101, 104))
    assert decide(102, 100, stale=False, changelog=False) == Decision(Verdict.DELIVER, gap=(101, 101))
