"""Faust's private attributes the runtime reads, each in one place (checked against faust-streaming 0.15.3).

``tests/unit/test_runtime_internals.py`` builds a Faust app offline and fails if any of these moves, so an upgrade
breaks a unit test instead of silently reporting a worker never ready or its lag as zero. The other private
internals used: :class:`.worker.TableIO` (the RocksDB store's ``_db_for_partition`` and ``_key_index``),
:class:`.tablestore.SharedMemoryStore` (``_dbs``) and :class:`.fetchguard.GuardedConsumer` (the fetch loop it
overrides, listed in ``fetchguard.FAUST_INTERNALS``).
"""

from __future__ import annotations

from typing import Any


def started_consumer(app: Any) -> Any | None:
    """The app's consumer if it was created, else None. ``app.consumer`` (public) would create one on first use,
    which a readiness probe or a metrics poll must not do before the worker starts it: Faust keeps it in
    ``App._consumer`` (faust-streaming 0.15.3)."""
    return getattr(app, "_consumer", None)


def committed_offset(consumer: Any, tp: Any) -> int | None:
    """The offset Faust last committed for ``tp`` (``Consumer._committed_offset``, faust-streaming 0.15.3): the
    position lag is measured from, without a round trip to the broker per partition per poll."""
    offset: int | None = consumer._committed_offset.get(tp)
    return offset
