"""Found by the SIGKILL scenario: after a crash the statuses feed replays a stretch the timeline had already
folded (the table's changelog is ahead of the committed offsets). A status change replayed over the later change
that closed its range read as an overlap and was recorded as a rejection, so members showed refusals they never
had; with overlapping ranges allowed, it would close a range again and add its own a second time. The replayed
stretch must leave the timeline exactly as it was.
"""

from __future__ import annotations

from app.domains.lara.state import fold_timeline
from tests.unit.test_lara_rules import FULL, fold_all, member_record, status


def test_a_replayed_stretch_of_status_changes_changes_nothing() -> None:
    first = member_record("member_status_change", status=status("Suspension", "2024-03-01T00:00:00"))
    second = member_record("member_status_change", status=status("Membre", "2024-09-01T00:00:00"))
    stretch = [member_record("member_statuses", statuses=FULL), first, second]
    state, _ = fold_all(fold_timeline, stretch)
    assert state["revision"] == 3

    replayed, again = fold_all(fold_timeline, stretch[1:], state)
    assert replayed == state
    assert again == []  # no second timeline message for compliance either
