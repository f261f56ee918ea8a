"""Idempotency: a seen-ids table with a TTL, keyed by each domain's own event id.

The table is a Faust table whose changelog is ``compact,delete`` with ``retention.ms`` = TTL, so Kafka itself
forgets ids older than the TTL and a recovering worker does not reload them; entries still in the local store
past their TTL are treated as absent here. Dedupe holds for redeliveries that carry the same Kafka key (the
table is partitioned like the raw topic), which is what broker redelivery and upstream retries produce.

An id is marked seen only after the event's outputs are acknowledged by the broker: a crash in between
re-emits (at-least-once) instead of losing outputs, and the folds downstream are idempotent.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import datetime


def stamp(now: datetime) -> bytes:
    """What a seen-ids entry holds: the time the id was marked, in seconds, as text."""
    return f"{now.timestamp():.3f}".encode()


def is_fresh(stamped: bytes | None, now: datetime, ttl_seconds: float) -> bool:
    """Was an id marked (``stamped``) less than ``ttl_seconds`` before ``now``? Absent or expired: not seen."""
    return stamped is not None and now.timestamp() - float(stamped) < ttl_seconds


class SeenIds:
    """Seen ids over any mapping (the plain loop of the benchmark keeps them in a dict)."""

    def __init__(self, table: MutableMapping[bytes, bytes], ttl_seconds: int) -> None:
        self._table = table
        self._ttl = ttl_seconds

    def seen(self, event_id: str, now: datetime) -> bool:
        return is_fresh(self._table.get(event_id.encode()), now, self._ttl)

    def mark(self, event_id: str, now: datetime) -> None:
        self._table[event_id.encode()] = stamp(now)
