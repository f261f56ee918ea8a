"""The worker's garbage-collector policy (``runtime.worker.tune_gc`` / ``settle_heap``): what it changes, and
that 0 keeps the interpreter's own policy untouched."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from app.core.runtime.worker import settle_heap, tune_gc
from app.settings import Settings


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


@pytest.mark.usefixtures("restore_gc")
def test_young_threshold_raises_the_first_generation_and_collects_the_old_ones_sooner() -> None:
    tune_gc(50_000)
    assert gc.get_threshold() == (50_000, 10, 5)


@pytest.mark.usefixtures("restore_gc")
def test_settle_heap_moves_what_is_alive_into_the_permanent_generation() -> None:
    survivor = [object() for _ in range(1000)]
    assert gc.get_freeze_count() == 0
    settle_heap(50_000)
    assert gc.get_freeze_count() >= len(survivor)
    assert not any(o is survivor for o in gc.get_objects())  # frozen objects are no longer scanned


@pytest.mark.usefixtures("restore_gc")
def test_zero_keeps_the_interpreters_policy() -> None:
    before = gc.get_threshold()
    tune_gc(0)
    settle_heap(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_setting_defaults_to_a_raised_threshold_and_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().gc_young_threshold == 50_000
    monkeypatch.setenv("SWITCHYARD_GC_YOUNG_THRESHOLD", "0")
    assert Settings().gc_young_threshold == 0
