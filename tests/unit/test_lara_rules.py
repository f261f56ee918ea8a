"""Lära's pure side: ids, enrichment, process/route, the three folds and the generators, with a fixed ``now``."""

from __future__ import annotations

import collections
import json
import random
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from app.core.errors import RecordError
from app.core.records import EVENT_TYPE_HEADER, RawRecord, content_event_id
from app.domains.lara.checks import normalise_id
from app.domains.lara.enrich import add_months, credit_progress, is_active_status_name, period_end
from app.domains.lara.generate import (
    ACCEPT,
    GeneratedRecord,
    History,
    invalid_variants,
    member_history,
    reference_compliance,
    reference_timelines,
    valid_documents,
)
from app.domains.lara.rules import RULES, custom_field_key, key_of, process, route
from app.domains.lara.state import (
    COMPLIANCE_FEED,
    COMPLIANCE_TOPIC,
    CYCLES_FEED,
    IDENTITIES_FEED,
    STATUSES_FEED,
    active_now,
    compliance_view,
    fold_compliance,
    fold_cycle,
    fold_identity,
    fold_timeline,
)

NOW = datetime(2024, 7, 1, 12, tzinfo=UTC)
USER = "DTUvbcrKNN3szXg6aQY%2fSg%3d%3d"
CYCLE_ID = "vBW5xMw1VQ2A8DFaNy22zA"


def sample(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = next(json.loads(s.value) for s in RULES.samples() if s.name == name)
    return doc


def run(event_type: str | None, doc: dict[str, Any] | bytes, now: datetime = NOW) -> Any:
    value = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    headers = ((EVENT_TYPE_HEADER, event_type.encode()),) if event_type is not None else ()
    return process(RawRecord(value=value, headers=headers, topic="lara.raw"), now)


def code_of(event_type: str | None, doc: dict[str, Any] | bytes) -> str:
    with pytest.raises(RecordError) as info:
        run(event_type, doc)
    return info.value.code


def feed(processed: Any) -> dict[str, Any]:
    """The routed value as a fold receives it: through JSON, as on the topic."""
    (emit,) = route(processed, NOW)
    value: dict[str, Any] = orjson.loads(orjson.dumps(emit.value))
    return value


def status(
    name: str, start: str, end: str | None = None, active: bool | None = None, **extra: Any
) -> dict[str, Any]:
    return {"status": name, "isActiveMember": active, "startDate": start, "endDate": end, **extra}


def member_record(event_type: str, **body: Any) -> dict[str, Any]:
    return feed(run(event_type, {"userId": USER, **body}))


# ---- ids ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "vBW5xMw1VQ2A8DFaNy22zA",
        "DTUvbcrKNN3szXg6aQY%2fSg%3d%3d",
        "CVYG8nO%2B51YLthTCoxBcYA%3D%3D",
        "CVYG8nO+51YLthTCoxBcYA==",
        "CVYG8nO-51YLthTCoxBc_w",
    ],
)
def test_seed_id_forms_are_valid_and_kept_as_sent(text: str) -> None:
    assert normalise_id(text) == text


def test_surrounding_whitespace_is_trimmed_as_in_the_seed_period_example() -> None:
    assert normalise_id(" vBW5xMw1VQ2A8DFaNy22zA") == "vBW5xMw1VQ2A8DFaNy22zA"
    enriched = run("period", sample("period--getperiodlist")).enriched
    assert enriched["requirements"][0]["id"] == "MSIHERO9EgU2q85mZpmljA"


@pytest.mark.parametrize(
    "value",
    [
        "vBW5xMw1VQ2A8DFaNy22z",  # 21 characters: not 16 bytes
        "vBW5xMw1VQ2A8DFaNy22zAA",  # 23 characters
        "vBW5xMw1VQ2A8DFaNy22zB",  # unused low bits set: not a canonical encoding
        "vBW5xMw1 Q2A8DFaNy22zA",  # inner space
        "DTUvbcrKNN3szXg6aQY%2fSg%3d",  # one padding character
        "vBW5xMw1VQ2A8DFaNy22zA%",
        "",
        12345,
        None,
    ],
)
def test_invalid_ids(value: Any) -> None:
    assert normalise_id(value) is None


# ---- enrichment --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "duration", "unit", "end"),
    [
        (datetime(2024, 1, 1, 8, tzinfo=UTC), 36, 0, datetime(2024, 1, 2, 20, tzinfo=UTC)),
        (datetime(2024, 2, 28, tzinfo=UTC), 2, 1, datetime(2024, 3, 1, tzinfo=UTC)),
        (datetime(2024, 1, 1, tzinfo=UTC), 3, 2, datetime(2024, 1, 22, tzinfo=UTC)),
        (datetime(2024, 1, 31, tzinfo=UTC), 1, 3, datetime(2024, 2, 29, tzinfo=UTC)),
        (datetime(2023, 1, 31, tzinfo=UTC), 1, 3, datetime(2023, 2, 28, tzinfo=UTC)),
        (datetime(2023, 10, 31, 9, 30, tzinfo=UTC), 5, 3, datetime(2024, 3, 31, 9, 30, tzinfo=UTC)),
        (datetime(2023, 11, 15, tzinfo=UTC), 14, 3, datetime(2025, 1, 15, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 1, 4, datetime(2025, 2, 28, tzinfo=UTC)),
        (datetime(2024, 2, 29, tzinfo=UTC), 4, 4, datetime(2028, 2, 29, tzinfo=UTC)),
        (
            datetime(2018, 2, 8, 15, 2, 45, 730000, tzinfo=UTC),
            2,
            4,
            datetime(2020, 2, 8, 15, 2, 45, 730000, tzinfo=UTC),
        ),
    ],
)
def test_period_end_per_unit_with_month_end_clamping(
    start: datetime, duration: int, unit: int, end: datetime
) -> None:
    assert period_end(start, duration, unit) == end


def test_add_months_backwards_clamps_too() -> None:
    assert add_months(datetime(2024, 3, 31, tzinfo=UTC), -1) == datetime(2024, 2, 29, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "active"),
    [
        ("Membre", True),
        ("  MEMBER ", True),
        ("1ère inscription", True),
        ("1ÈRE INSCRIPTION", True),
        ("1ere inscription", False),  # accents as written
        ("Limitation du droit d'exercice", True),
        ("suspension du droit d'exercice", True),
        (" autorisation spéciale", True),
        ("Temporaire", True),
        ("Inactif", False),
        ("Membre honoraire", False),
    ],
)
def test_activity_derived_from_the_seed_status_list(name: str, active: bool) -> None:
    assert is_active_status_name(name) is active


def test_credit_progress_of_the_seed_example() -> None:
    assert credit_progress(40.0, 22.0, 8.0) == {
        "earnedCredits": 30.0,
        "remainingCredits": 10.0,
        "progressPercent": 75.0,
        "meetsRequirement": False,
    }


def test_credit_progress_clamps_and_handles_missing_values() -> None:
    over = credit_progress(40.0, 50.0, 8.0)
    assert (over["progressPercent"], over["remainingCredits"], over["meetsRequirement"]) == (100.0, 0.0, True)
    assert credit_progress(0.0, None, None)["progressPercent"] == 100.0
    assert credit_progress(None, 5.0, None) == {
        "earnedCredits": 5.0,
        "remainingCredits": None,
        "progressPercent": None,
        "meetsRequirement": None,
    }
    assert credit_progress(30.0, 10.0, None)["progressPercent"] == 33.33


# ---- process and route -------------------------------------------------------------------------------------


def test_every_sample_is_accepted_keyed_and_routed_to_its_feed() -> None:
    for s in RULES.samples():
        assert s.event_type is not None
        processed = run(s.event_type, s.value)
        assert processed.event_id == content_event_id(s.event_type, json.loads(s.value))
        assert processed.enriched["eventId"] == processed.event_id
        assert key_of(s.value, s.event_type) == processed.key.encode()
        (emit,) = route(processed, NOW)
        if s.event_type in ("cycle", "period", "user_progress"):
            assert (emit.topic, emit.key) == (CYCLES_FEED, CYCLE_ID)
        elif (custom := custom_field_key(processed.enriched)) is None:
            assert (emit.topic, emit.key) == (STATUSES_FEED, processed.key)
        else:  # names a custom field: the identity table links it to the user the record names, if any
            assert (emit.topic, emit.key) == (IDENTITIES_FEED, custom)
            assert (emit.value["userId"], emit.value["record"]) == (
                processed.enriched["userId"],
                processed.enriched,
            )


def test_cycle_names_per_language() -> None:
    enriched = run("cycle", sample("cycle--getlist")).enriched
    assert enriched["names"] == {
        "fr-CA": "Formation continue obligatoire 2023-2025",
        "en": "Mandatory continuing education 2023-2025",
    }
    assert enriched["name"] == "Formation continue obligatoire 2023-2025"
    doc = sample("cycle--getlist")
    doc["name"]["texts"] = [
        {"text": "Formación", "languageId": 4},
        {"text": "Formation (FR)", "languageId": 3},
    ]
    assert run("cycle", doc).enriched["names"] == {"es": "Formación", "fr-FR": "Formation (FR)"}
    assert run("cycle", doc).enriched["name"] == "Formation (FR)"


def test_period_enrichment() -> None:
    enriched = run("period", sample("period--getperiodlist")).enriched
    assert enriched["startDate"] == "2023-04-01T00:00:00Z"
    assert enriched["endDate"] == "2025-04-01T00:00:00Z"
    assert enriched["durationUnitName"] == "years"
    assert enriched["creditTarget"] == 40.0
    assert enriched["requirements"][0]["typeName"] == "credits"
    assert enriched["isCurrent"] is True
    assert (
        run("period", sample("period--getperiodlist"), datetime(2025, 4, 1, tzinfo=UTC)).enriched["isCurrent"]
        is False
    )


def test_period_without_duration_has_no_end() -> None:
    doc = sample("period--getperiodlist")
    del doc["durationUnit"]
    assert run("period", doc).enriched["endDate"] is None


def test_progress_enrichment_and_key() -> None:
    processed = run("user_progress", sample("user_progress--getuserprogress"))
    assert processed.key == USER
    assert processed.enriched["cycleId"] == CYCLE_ID
    assert (processed.enriched["progressPercent"], processed.enriched["remainingCredits"]) == (75.0, 10.0)


def test_status_dates_without_offset_are_utc_and_empty_end_is_open() -> None:
    enriched = run("member_statuses", sample("member_statuses--updatememberstatuses")).enriched
    first, second = enriched["statuses"]
    assert first["startDate"] == "2018-02-08T15:02:45.730000Z"
    assert first["isActiveMember"] is True and first["activeFrom"] == "status-name"
    assert second["endDate"] is None and second["activeFrom"] == "given"


def test_null_activity_of_an_unlisted_status_is_inactive() -> None:
    doc = sample("member_status_change--changecurrentmemberstatus")
    doc["status"]["status"] = "Radié"
    assert run("member_status_change", doc).enriched["status"]["isActiveMember"] is False


def test_given_activity_wins_over_the_name() -> None:
    doc = sample("member_status_change--changecurrentmemberstatus")
    doc["status"].update(status="Membre", isActiveMember=False)
    assert run("member_status_change", doc).enriched["status"]["isActiveMember"] is False


def test_user_named_by_custom_field_when_no_user_id() -> None:
    doc = sample("member_status_change--changecurrentmemberstatus")
    del doc["userId"]
    doc["customFieldValue"] = " 12345 "
    processed = run("member_status_change", doc)
    assert processed.key == "member_status:12345"
    assert processed.enriched["userId"] is None
    assert key_of(orjson.dumps(doc), "member_status_change") == b"member_status:12345"


def test_listed_statuses_name_their_user() -> None:
    processed = run("member_statuses", sample("member_statuses--getmemberstatuses"))
    assert processed.key == processed.enriched["userId"] == "CVYG8nO%2b51YLthTCoxBcYA%3d%3d"
    doc = sample("member_statuses--getmemberstatuses")
    doc["userId"] = USER
    assert code_of("member_statuses", doc) == "LARA-1009"


def test_an_empty_status_set_is_accepted_and_clears() -> None:
    assert run("member_statuses", {"userId": USER, "statuses": []}).enriched["statuses"] == []


def test_unknown_or_missing_type_header() -> None:
    body = orjson.dumps(sample("cycle--getlist"))
    assert code_of(None, body) == "LARA-UNKNOWN-TYPE"
    assert code_of("cycles", body) == "LARA-UNKNOWN-TYPE"


def test_error_messages_never_echo_values() -> None:
    doc = sample("user_progress--getuserprogress")
    doc["memberId"] = "jean.tremblay@ordre.qc.ca"
    with pytest.raises(RecordError) as info:
        run("user_progress", doc)
    assert "jean" not in str(info.value) and info.value.path == "/memberId"


@pytest.mark.parametrize("variant", invalid_variants(random.Random(11)), ids=lambda v: v[0])
def test_generated_invalid_variant_answers_its_code(variant: tuple[str, str | None, bytes, str]) -> None:
    _label, event_type, value, code = variant
    assert code_of(event_type, value) == code


def test_generated_invalid_variants_cover_every_seed_code() -> None:
    codes = {code for *_, code in invalid_variants(random.Random(1))}
    assert {f"LARA-{n}" for n in range(1000, 1011)} | {"LARA-UNKNOWN-TYPE"} <= codes


def test_generated_valid_documents_are_accepted() -> None:
    for seed in range(5):
        for event_type, doc in valid_documents(random.Random(seed)):
            run(event_type, doc)


# ---- timeline fold -----------------------------------------------------------------------------------------


def fold_all(fold: Any, values: list[Any], state: Any = None) -> tuple[Any, list[Any]]:
    emits: list[Any] = []
    for value in values:
        folded = fold(state, value, NOW)
        if folded.changed:
            state = orjson.loads(orjson.dumps(folded.state)) if folded.state is not None else None
        emits.extend(folded.emits)
    return state, emits


FULL = [
    status("Inscription", "2019-01-01T00:00:00", "2020-01-01T00:00:00"),
    status("Membre", "2020-01-01T00:00:00"),
]


def spans(state: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(e["status"], e["startDate"], e["endDate"]) for e in state["entries"]]


def test_full_set_replaces_and_is_idempotent() -> None:
    value = member_record("member_statuses", statuses=FULL)
    state, emits = fold_all(fold_timeline, [value])
    assert spans(state) == [
        ("Inscription", "2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
        ("Membre", "2020-01-01T00:00:00Z", None),
    ]
    assert state["revision"] == 1
    (emit,) = emits
    assert (emit.topic, emit.key, emit.value["kind"], emit.value["revision"]) == (
        COMPLIANCE_FEED,
        USER,
        "timeline",
        1,
    )
    again = fold_timeline(state, value, NOW)
    assert (again.changed, list(again.emits)) == (False, [])
    replaced, _ = fold_all(
        fold_timeline,
        [member_record("member_statuses", statuses=[status("Radié", "2021-01-01T00:00:00")])],
        state,
    )
    assert spans(replaced) == [("Radié", "2021-01-01T00:00:00Z", None)]
    assert replaced["revision"] == 2


def test_change_closes_the_active_range_and_opens_a_new_one_once() -> None:
    change = member_record(
        "member_status_change",
        status=status("Suspension du droit d'exercice", "2024-03-01T00:00:00", active=False),
    )
    state, _ = fold_all(fold_timeline, [member_record("member_statuses", statuses=FULL), change])
    assert spans(state) == [
        ("Inscription", "2019-01-01T00:00:00Z", "2020-01-01T00:00:00Z"),
        ("Membre", "2020-01-01T00:00:00Z", "2024-03-01T00:00:00Z"),
        ("Suspension du droit d'exercice", "2024-03-01T00:00:00Z", None),
    ]
    again = fold_timeline(state, change, NOW)
    assert (again.changed, list(again.emits)) == (False, [])


def test_change_on_an_empty_timeline_opens_a_range() -> None:
    state, _ = fold_all(
        fold_timeline, [member_record("member_status_change", status=status("Membre", "2024-03-01T00:00:00"))]
    )
    assert spans(state) == [("Membre", "2024-03-01T00:00:00Z", None)]


CONCURRENT = [
    status("Membre", "2020-01-01T00:00:00"),
    status("Suspension du droit d'exercice", "2024-03-01T00:00:00", "2024-09-01T00:00:00"),
]


@pytest.mark.parametrize(
    "statuses",
    [
        CONCURRENT,
        [status("Inscription", "2019-01-01T00:00:00", "2020-01-01T00:00:01"), FULL[1]],
        [status("Inscription", "2019-01-01T00:00:00"), FULL[1]],
    ],
    ids=["open-membership-and-suspension", "one-second-overlap", "two-open-ranges"],
)
def test_a_full_set_with_overlapping_ranges_is_accepted_and_kept(statuses: list[dict[str, Any]]) -> None:
    """No seed rule (1000-1010) forbids overlapping ranges: they were LARA-OVERLAP before."""
    value = member_record("member_statuses", statuses=statuses)
    state, emits = fold_all(fold_timeline, [value])
    assert len(state["entries"]) == 2 and len(emits) == 1
    assert "rejected" not in state


def test_a_change_inside_an_earlier_range_closes_only_the_active_one_and_adds_a_concurrent_range() -> None:
    state, _ = fold_all(fold_timeline, [member_record("member_statuses", statuses=FULL)])
    inside = member_record("member_status_change", status=status("Membre", "2019-06-01T00:00:00"))
    folded = fold_timeline(state, inside, NOW)
    assert folded.changed and len(list(folded.emits)) == 1
    assert spans(folded.state) == [
        ("Inscription", "2019-01-01T00:00:00Z", "2019-06-01T00:00:00Z"),
        ("Membre", "2019-06-01T00:00:00Z", None),
        ("Membre", "2020-01-01T00:00:00Z", None),
    ]
    assert fold_timeline(folded.state, inside, NOW).changed is False


def test_an_update_may_make_an_entry_overlap_another() -> None:
    entry = "uprlbtvuqNuwmncYPu1ljg%3d%3d"
    full = member_record(
        "member_statuses",
        statuses=[
            status("Inscription", "2019-01-01T00:00:00", "2020-01-01T00:00:00", entryId=entry),
            FULL[1],
        ],
    )
    stretch = member_record(
        "member_status_update",
        entryId=entry,
        status=status("Inscription", "2019-01-01T00:00:00", "2021-01-01T00:00:00"),
    )
    state, _ = fold_all(fold_timeline, [full, stretch])
    assert spans(state) == [
        ("Inscription", "2019-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
        ("Membre", "2020-01-01T00:00:00Z", None),
    ]


def _timeline(statuses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state, _ = fold_all(fold_timeline, [member_record("member_statuses", statuses=statuses)])
    entries: list[dict[str, Any]] = state["entries"]
    return entries


@pytest.mark.parametrize(
    ("suspension_active", "during", "after"),
    [(None, True, True), (True, True, True), (False, False, True)],
    ids=["flag-unset-derived-active", "flag-true", "flag-false"],
)
def test_active_now_is_decided_from_every_range_covering_now(
    suspension_active: bool | None, during: bool, after: bool
) -> None:
    """The seed lists "suspension du droit d'exercice" as an active status: a membership with a concurrent
    suspension stays active unless the suspension says isActiveMember false, which holds while it lasts."""
    entries = _timeline(
        [
            CONCURRENT[0],
            status(
                "Suspension du droit d'exercice",
                "2024-03-01T00:00:00",
                "2024-09-01T00:00:00",
                active=suspension_active,
            ),
        ]
    )
    assert active_now(entries, datetime(2024, 2, 1, tzinfo=UTC)) is True
    assert active_now(entries, datetime(2024, 7, 1, tzinfo=UTC)) is during
    assert active_now(entries, datetime(2024, 9, 1, tzinfo=UTC)) is after
    view = compliance_view(
        {"memberKey": USER, "timeline": {"revision": 1, "entries": entries}, "cycles": {}},
        datetime(2024, 7, 1, tzinfo=UTC),
    )
    assert view["activeNow"] is during
    assert [e["status"] for e in view["currentStatuses"]] == ["Membre", "Suspension du droit d'exercice"]
    assert view["currentStatus"]["status"] == "Suspension du droit d'exercice"


def test_an_inactive_range_between_active_ones_and_no_range_at_all() -> None:
    entries = _timeline([status("Radié", "2019-01-01T00:00:00", "2020-01-01T00:00:00"), FULL[1]])
    assert active_now(entries, datetime(2019, 6, 1, tzinfo=UTC)) is False  # "Radié" is not in the seed's list
    assert active_now(entries, datetime(2018, 6, 1, tzinfo=UTC)) is False  # nothing covers it
    assert active_now(entries, datetime(2021, 6, 1, tzinfo=UTC)) is True


def test_update_sets_one_entry_or_adds_it() -> None:
    entry = "uprlbtvuqNuwmncYPu1ljg%3d%3d"
    full = member_record(
        "member_statuses",
        statuses=[
            status("Inscription", "2019-01-01T00:00:00", "2020-01-01T00:00:00", entryId=entry),
            FULL[1],
        ],
    )
    rename = member_record(
        "member_status_update",
        entryId=entry,
        status=status("1ère inscription", "2019-01-01T00:00:00", "2020-01-01T00:00:00"),
    )
    state, _ = fold_all(fold_timeline, [full, rename])
    assert state["entries"][0]["status"] == "1ère inscription" and state["entries"][0]["entryId"] == entry
    assert fold_timeline(state, rename, NOW).changed is False
    other = "CVYG8nO%2b51YLthTCoxBcYA%3d%3d"
    early = member_record(
        "member_status_update",
        entryId=other,
        status=status("Temporaire", "2018-01-01T00:00:00", "2019-01-01T00:00:00"),
    )
    added, _ = fold_all(fold_timeline, [early], state)
    assert [e["entryId"] for e in added["entries"]] == [other, entry, None]


def test_timeline_tombstone_erases_and_passes_the_erasure_on() -> None:
    state, _ = fold_all(fold_timeline, [member_record("member_statuses", statuses=FULL)])
    folded = fold_timeline(state, None, NOW)
    assert folded.state is None and [(e.topic, e.key, e.value) for e in folded.emits] == [
        (COMPLIANCE_FEED, USER, None)
    ]
    assert fold_timeline(None, None, NOW).changed is False


# ---- cycle and compliance folds ----------------------------------------------------------------------------


def cycle_values() -> list[dict[str, Any]]:
    return [
        feed(run(t, sample(n))) for t, n in (("cycle", "cycle--getlist"), ("period", "period--getperiodlist"))
    ]


def progress_value(**changes: Any) -> dict[str, Any]:
    return feed(run("user_progress", {**sample("user_progress--getuserprogress"), **changes}))


def test_cycle_forwards_progress_with_periods_and_fans_period_changes_out() -> None:
    state, emits = fold_all(fold_cycle, [*cycle_values(), progress_value()])
    (emit,) = emits
    assert (emit.topic, emit.key, emit.value["kind"]) == (COMPLIANCE_FEED, USER, "progress")
    assert emit.value["periods"][0]["creditTarget"] == 40.0 and emit.value["cycle"]["isActive"] is True
    period = sample("period--getperiodlist")
    period["requirements"][0]["targetValue"] = 45.0
    folded = fold_cycle(state, feed(run("period", period)), NOW)
    (fan,) = folded.emits
    assert (fan.key, fan.value["kind"], fan.value["seq"]) == (USER, "cycle", state["seq"] + 1)
    assert fan.value["periods"][0]["creditTarget"] == 45.0


def test_cycle_ignores_a_progress_seen_again_even_after_a_newer_one() -> None:
    old, new = progress_value(), progress_value(completedCredits=35.0)
    state, emits = fold_all(fold_cycle, [old, new])
    assert len(emits) == 2
    for replayed in (old, new):
        folded = fold_cycle(state, replayed, NOW)
        assert (folded.changed, list(folded.emits)) == (False, [])
    same_cycle = fold_cycle(state, cycle_values()[0], NOW)
    assert same_cycle.changed and fold_cycle(same_cycle.state, cycle_values()[0], NOW).changed is False


def compliance_inputs() -> list[Any]:
    _, timeline = fold_all(fold_timeline, [member_record("member_statuses", statuses=FULL)])
    _, cycle = fold_all(fold_cycle, [*cycle_values(), progress_value()])
    return [orjson.loads(orjson.dumps(e.value)) for e in [*timeline, *cycle]]


def test_compliance_snapshot_after_every_change() -> None:
    _, emits = fold_all(fold_compliance, compliance_inputs())
    assert [(e.topic, e.key) for e in emits] == [(COMPLIANCE_TOPIC, USER)] * 2
    view = emits[-1].value
    assert view["activeNow"] is True and view["currentStatus"]["status"] == "Membre"
    (cycle,) = view["cycles"]
    assert cycle["currentPeriod"]["cyclePeriodId"] == "qRJkZUPGl3paQ6wnU88QFw"
    assert (cycle["requiredCredits"], cycle["requirementSource"], cycle["earnedCredits"]) == (
        40.0,
        "user_progress",
        30.0,
    )
    assert (cycle["progressPercent"], cycle["compliant"], view["compliant"]) == (75.0, False, False)


def test_compliance_falls_back_to_the_period_requirement() -> None:
    progress = sample("user_progress--getuserprogress")
    del progress["requiredCredits"]
    _, cycle = fold_all(fold_cycle, [*cycle_values(), feed(run("user_progress", progress))])
    _, emits = fold_all(fold_compliance, [orjson.loads(orjson.dumps(e.value)) for e in cycle])
    (view_cycle,) = emits[-1].value["cycles"]
    assert (view_cycle["requiredCredits"], view_cycle["requirementSource"]) == (40.0, "period")
    assert emits[-1].value["activeNow"] is None


def test_compliance_ignores_older_or_repeated_messages() -> None:
    inputs = compliance_inputs()
    state, _ = fold_all(fold_compliance, inputs)
    for value in inputs:
        folded = fold_compliance(state, value, NOW)
        assert (folded.changed, list(folded.emits)) == (False, [])
    older = {**inputs[0], "revision": 0, "entries": []}
    assert fold_compliance(state, older, NOW).changed is False


def test_compliance_tombstone_publishes_a_tombstone() -> None:
    state, _ = fold_all(fold_compliance, compliance_inputs())
    folded = fold_compliance(state, None, NOW)
    assert folded.state is None and [(e.topic, e.key, e.value) for e in folded.emits] == [
        (COMPLIANCE_TOPIC, USER, None)
    ]


# ---- the generated history through an in-memory pipeline ----------------------------------------------------

HISTORY_NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def pipeline(
    records: list[GeneratedRecord], *, dedupe: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, Any], list[str]]:
    """Stage one then the folds, as the runtime chains them (FIFO, so per-key order holds): the tables, the
    last compliance snapshot per member, and the records whose outcome was not the labelled one."""
    by_topic = {r.source_topic: r for r in RULES.tables}
    tables: dict[str, dict[str, Any]] = {r.name: {} for r in RULES.tables}
    snapshots: dict[str, Any] = {}
    wrong: list[str] = []
    seen: set[str] = set()
    for record in records:
        try:
            processed = process(record.raw(), HISTORY_NOW)
        except RecordError as err:
            if err.code != record.expect:
                wrong.append(f"{record.label}: {err.code}")
            continue
        if record.expect != ACCEPT:
            wrong.append(f"{record.label}: accepted")
        if dedupe and processed.event_id in seen:
            continue
        seen.add(processed.event_id)
        queue = collections.deque(route(processed, HISTORY_NOW))
        while queue:
            emit = queue.popleft()
            if emit.topic == COMPLIANCE_TOPIC:
                snapshots[str(emit.key)] = emit.value
                if emit.value is None:  # erased: a custom field's snapshot once it is linked to its user
                    del snapshots[str(emit.key)]
                continue
            rule = by_topic[emit.topic]
            table = tables[rule.name]
            folded = rule.fold(table.get(str(emit.key)), orjson.loads(orjson.dumps(emit.value)), HISTORY_NOW)
            if folded.changed:
                table[str(emit.key)] = orjson.loads(orjson.dumps(folded.state))
            queue.extend(folded.emits)
    return tables, snapshots, wrong


def _overlaps(entries: list[dict[str, Any]]) -> int:
    """Pairs of ranges of one timeline that overlap (half-open; an open end never ends)."""

    def at(text: str | None) -> datetime:
        return datetime.fromisoformat(text) if text else datetime.max.replace(tzinfo=UTC)

    return sum(
        1
        for i, a in enumerate(entries)
        for b in entries[i + 1 :]
        if at(a["startDate"]) < at(b["endDate"]) and at(b["startDate"]) < at(a["endDate"])
    )


@pytest.fixture(scope="module")
def history() -> History:
    return member_history(random.Random(7), now=HISTORY_NOW, members=100, changes=1000)


def test_history_has_what_it_claims(history: History) -> None:
    labels = collections.Counter(r.label for r in history.records if not r.redelivery)
    assert labels["change"] + labels["update"] + labels["concurrent-change"] == 1000
    assert labels["full-set"] == 100 and labels["concurrent-change"] > 0 and labels["period-resent"] == 2
    assert any(r.redelivery for r in history.records)
    assert any(r.expect != ACCEPT for r in history.records)
    assert any(k.startswith("numero_membre:") for k in history.truth.timelines)
    again = member_history(random.Random(7), now=HISTORY_NOW, members=100, changes=1000)
    assert [r.value for r in again.records] == [r.value for r in history.records]


@pytest.mark.parametrize("dedupe", [True, False], ids=["with-dedupe", "folds-alone"])
def test_history_folds_to_the_reference(history: History, dedupe: bool) -> None:
    tables, snapshots, wrong = pipeline(history.records, dedupe=dedupe)
    assert wrong == []
    timelines = {k: v for k, v in tables["status-timeline"].items() if v is not None}
    assert {k: v["entries"] for k, v in timelines.items()} == reference_timelines(history)
    assert sum(_overlaps(v["entries"]) for v in timelines.values()) > 0, "concurrent ranges were generated"
    assert snapshots == reference_compliance(history)
    # members known by custom field: some linked to their user (credits joined), some still unresolved
    custom_only = {k for k in history.truth.timelines if k.startswith("numero_membre:")}
    identities = {k: v for k, v in tables["identities"].items() if len(k) == len("numero_membre:00000")}
    assert custom_only <= set(identities)
    linked = {v["userId"] for v in identities.values() if v["userId"] is not None}
    assert linked and all(snapshots[u]["identity"] == "user" and snapshots[u]["cycles"] for u in linked)
    assert all(snapshots[u]["activeNow"] is not None for u in linked)
    unresolved = [k for k, v in identities.items() if v["userId"] is None]
    assert unresolved and all(snapshots[k]["identity"] == "unresolved" for k in unresolved)


# ---- identity: members named by custom field -----------------------------------------------------------------

CUSTOM = {"customFieldAPIName": "member_status", "customFieldValue": "12345"}
CUSTOM_KEY = "member_status:12345"


def custom_record(event_type: str, *, user: str | None = None, **body: Any) -> dict[str, Any]:
    """The identity feed value of a member record naming the custom field (and ``user`` too, when given)."""
    return feed(run(event_type, {**CUSTOM, **({"userId": user} if user else {}), **body}))


def test_an_unlinked_custom_field_is_kept_visible_and_unresolved() -> None:
    value = custom_record("member_statuses", statuses=FULL)
    assert (value["customKey"], value["userId"]) == (CUSTOM_KEY, None)
    folded = fold_identity(None, value, NOW)
    assert folded.outcome == "unresolved" and folded.state["userId"] is None
    assert [(e.topic, e.key) for e in folded.emits] == [(STATUSES_FEED, CUSTOM_KEY)]
    assert [p["eventId"] for p in folded.state["pending"]] == [value["record"]["eventId"]]
    again = fold_identity(orjson.loads(orjson.dumps(folded.state)), value, NOW)
    assert again.changed is False and again.outcome == "unresolved"  # redelivered: forwarded again, kept once


def test_a_full_set_makes_the_pending_records_before_it_moot() -> None:
    change = custom_record("member_status_change", status=status("Membre", "2024-03-01T00:00:00"))
    full = custom_record("member_statuses", statuses=FULL)
    state, _ = fold_all(fold_identity, [change, full])
    assert [p["type"] for p in state["pending"]] == ["member_statuses"]


def test_a_record_naming_the_user_links_the_custom_field_and_flushes_what_was_held() -> None:
    held = [
        custom_record("member_statuses", statuses=FULL),
        custom_record("member_status_change", status=status("Suspension", "2024-03-01T00:00:00")),
    ]
    state, _ = fold_all(fold_identity, held)
    link = custom_record("member_status_change", user=USER, status=status("Membre", "2024-05-01T00:00:00"))
    assert link["userId"] == USER and link["record"]["memberKey"] == USER
    folded = fold_identity(state, link, NOW)
    assert folded.outcome == "linked" and folded.state["userId"] == USER and folded.state["pending"] == []
    assert [(e.topic, e.key) for e in folded.emits] == [
        (STATUSES_FEED, USER),
        (STATUSES_FEED, USER),
        (STATUSES_FEED, CUSTOM_KEY),  # the custom field's own timeline is erased: the member is the user now
        (STATUSES_FEED, USER),
    ]
    flushed = [e.value for e in folded.emits if e.value is not None]
    assert [v["eventId"] for v in flushed] == [
        *(h["record"]["eventId"] for h in held),
        link["record"]["eventId"],
    ]
    assert all(v["memberKey"] == v["userId"] == USER for v in flushed)
    later = custom_record("member_status_change", status=status("Membre", "2024-09-01T00:00:00"))
    forwarded = fold_identity(folded.state, later, NOW)
    assert (forwarded.changed, forwarded.outcome) == (False, "forwarded")
    assert [(e.topic, e.key, e.value["memberKey"]) for e in forwarded.emits] == [(STATUSES_FEED, USER, USER)]


def _chain(*records: tuple[str, dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    generated = [GeneratedRecord(orjson.dumps(doc), b"k", t, ACCEPT, t) for t, doc in records]
    tables, snapshots, wrong = pipeline(generated)
    assert wrong == []
    return tables, snapshots


def test_a_member_named_by_custom_field_gets_their_credits_once_a_record_links_them() -> None:
    """Progress names the user (memberId); statuses named the member by custom field only, so before the
    identity table the two never met: the user had credits without statuses, the custom field the reverse."""
    progress = sample("user_progress--getuserprogress")
    assert progress["memberId"] == USER
    cycle, period = (("cycle", sample("cycle--getlist")), ("period", sample("period--getperiodlist")))
    statuses = ("member_statuses", {**CUSTOM, "statuses": FULL})
    link = (
        "member_status_update",
        {
            **CUSTOM,
            "userId": USER,
            "entryId": "uprlbtvuqNuwmncYPu1ljg%3d%3d",
            "status": status("Inscription", "2018-01-01T00:00:00", "2019-01-01T00:00:00"),
        },
    )
    _, before = _chain(cycle, period, ("user_progress", progress), statuses)
    assert before[CUSTOM_KEY]["identity"] == "unresolved" and before[CUSTOM_KEY]["cycles"] == []
    assert before[CUSTOM_KEY]["activeNow"] is True
    assert before[USER]["activeNow"] is None  # credits, but no status: the member is not joined yet

    tables, after = _chain(cycle, period, ("user_progress", progress), statuses, link)
    assert CUSTOM_KEY not in after  # its snapshot was erased: the member is the user now
    joined = after[USER]
    assert (joined["identity"], joined["activeNow"]) == ("user", True)
    assert [c["earnedCredits"] for c in joined["cycles"]] == [30.0]
    assert [e["status"] for e in tables["status-timeline"][USER]["entries"]] == [
        "Inscription",
        "Inscription",
        "Membre",
    ]
    assert tables["identities"][CUSTOM_KEY]["userId"] == USER
