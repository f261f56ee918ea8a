"""The one traffic protocol every harness speaks: generated records, and the oracle that judges a run.

The bench, the reliability suite, the hostile fuzzer and the demo all need a domain's upstream traffic (valid
records, redeliveries, broken ones) and, for the checkers, what a correct worker makes of it. Each domain
provides that through one :class:`TrafficSource` in a module the worker never imports (the domain's
``generate.py``, named lazily by :attr:`app.core.domain.Domain.traffic`), so generators and reference folds
never ride along with the worker's own code.

A generated record says what must become of it (:attr:`TrafficRecord.outcome`, and for a dead letter its stable
:attr:`~TrafficRecord.code`); the dead letters are therefore judged the same way for every domain
(:func:`expected_dead_letters`). Everything else a domain promises (outputs, tables, HTTP answers) is judged by
its :class:`Oracle`, which reads a finished run through :class:`Observed` and never through a Kafka client or a
worker of its own, so the harness decides how records are read (isolation, prefixes, which worker answers).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import orjson

from app.core.avro import SINGLE_OBJECT_MAGIC, decode_single_object
from app.core.errors import RecordError
from app.core.records import Headers, RawRecord

#: What the worker must do with a record: accept it, pass it on untouched (a known-unknown upstream event), or
#: dead-letter it with :attr:`TrafficRecord.code`.
Outcome = Literal["accepted", "passed", "dead-lettered"]


@dataclass(frozen=True, slots=True)
class TrafficRecord:
    """One raw record exactly as upstream would publish it, and what must become of it."""

    value: bytes | None
    key: bytes | None
    headers: Headers = ()
    outcome: Outcome = "accepted"
    #: the stable error code the dead letter carries; set exactly when ``outcome`` is ``"dead-lettered"``
    code: str | None = None
    #: why the generator made it ("valid", "redelivery", the break it carries): for reports, never judged
    label: str = ""

    def __post_init__(self) -> None:
        if (self.outcome == "dead-lettered") != (self.code is not None):
            raise ValueError(
                f"{self.outcome} record: {'needs an error code' if self.code is None else 'takes no code'}"
            )

    @classmethod
    def rejected(
        cls, value: bytes | None, key: bytes | None, code: str, headers: Headers = (), label: str = ""
    ) -> TrafficRecord:
        """A record the worker must dead-letter with ``code``."""
        return cls(value, key, headers, "dead-lettered", code, label)


class Answer(Protocol):
    """An HTTP answer of the worker (httpx's response has this shape)."""

    @property
    def status_code(self) -> int: ...

    def json(self) -> Any: ...


class Observed(Protocol):
    """What an oracle may look at once a run has caught up: the records on a catalog topic (committed ones,
    in partition and offset order) and the worker's HTTP API."""

    def read(self, topic: str) -> Sequence[RawRecord]: ...

    def get(self, path: str) -> Answer: ...


@dataclass
class Verdict:
    """A domain's figures after a run, Jepsen-style: a *lost* write is an expected output (or table answer)
    absent once the worker caught up; a *duplicate* is one seen more than once. ``problems`` are failures;
    duplicates on at-least-once outputs are figures, not failures (a crash may replay a micro-batch)."""

    sent: int = 0
    expected: int = 0
    processed: int = 0
    lost: int = 0
    duplicated: int = 0
    dead_lettered: int = 0
    problems: list[str] = field(default_factory=list)

    def compare(self, what: str, want: Counter[Any], got: Counter[Any]) -> None:
        """Every ``want`` at least as often in ``got``; extra copies counted as duplicates."""
        short = want - got
        if short:
            self.lost += sum(short.values())
            self.problems.append(f"{what}: {sum(short.values())} missing")
        self.duplicated += sum((got - want).values())

    def wrong(self, what: str, keys: Sequence[Any]) -> None:
        """Table answers (or snapshots) that differ from the reference: each one counts as lost."""
        if keys:
            self.lost += len(keys)
            self.problems.append(f"{what}: {len(keys)} differ from the reference, e.g. {list(keys)[:3]}")

    def figures(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "expected_outputs": self.expected,
            "processed": self.processed,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "dead_lettered": self.dead_lettered,
            "problems": self.problems[:10],
        }


#: Judges a finished run of ``records`` (the stream as published: a harness may have added records of the domain
#: made elsewhere, e.g. ones carrying planted personal data); fills ``expected``, ``processed``, ``lost``,
#: ``duplicated`` and ``problems`` of the verdict it is given (the harness counts ``sent`` and the dead letters).
#: An oracle that needs more than the records (a generator's ground truth) closes over it.
Oracle = Callable[[Sequence[TrafficRecord], Observed, Verdict], None]


def _no_oracle(records: Sequence[TrafficRecord], observed: Observed, verdict: Verdict) -> None:
    """A stream nobody judges beyond its dead letters."""


@dataclass(frozen=True)
class Traffic:
    """A stream in publishing order, and the oracle that knows what a correct worker makes of all of it (cut the
    stream and the oracle no longer speaks for it: the bench, which judges nothing, may)."""

    records: list[TrafficRecord]
    oracle: Oracle = _no_oracle

    def judge(self, seen: Observed, verdict: Verdict) -> None:
        self.oracle(self.records, seen, verdict)


def named_event_id(value: bytes | None) -> str | None:
    """The event id an output names: ``eventId`` / ``event_id`` of a JSON object, or of an Avro single-object
    record. Both spellings, because the domains keep their upstream's casing."""
    if not value:
        return None
    try:
        doc = decode_single_object(value)[1] if value.startswith(SINGLE_OBJECT_MAGIC) else orjson.loads(value)
    except (RecordError, orjson.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    found = doc.get("eventId", doc.get("event_id"))
    return None if found is None else str(found)


#: Valid documents a fuzzer may break: (event type travelling in the header, or None; the decoded body).
Document = tuple[str | None, dict[str, Any]]


@dataclass(frozen=True)
class TrafficSource:
    """A domain's traffic, as every harness asks for it.

    ``generate(rng, n, now)``: about ``n`` records (one function of ``rng`` and ``now``, so a seed gives the same
    bytes on every run), redeliveries and broken records included, with their oracle. ``documents(rng)``: valid
    bodies for the hostile fuzzer to break. ``description`` and ``primary_topics`` are the bench's: latency is
    measured on the primary outputs, the ones every accepted event has and that name its event id.
    ``event_id_of`` reads the event id a primary output names (:func:`named_event_id` by default).
    ``bench_records``: the backlog of a quick and of a full bench run (light records need more for a steady
    measure).
    """

    generate: Callable[[random.Random, int, datetime], Traffic]
    documents: Callable[[random.Random], list[Document]]
    description: str
    primary_topics: tuple[str, ...]
    event_id_of: Callable[[bytes | None], str | None] = named_event_id
    bench_records: tuple[int, int] = (1500, 5000)


def expected_dead_letters(records: Iterable[TrafficRecord]) -> Counter[tuple[bytes | None, str]]:
    """Every distinct (value, code) the dead-letter topic must hold, once each (a redelivered broken record is
    dead-lettered again, so copies are not counted as duplicates by a caller comparing distinct pairs)."""
    return Counter({(r.value, r.code): 1 for r in records if r.code is not None})


def wrong_answers(
    seen: Observed, answers: Iterable[tuple[str, Any]], view: Callable[[Any], Any] = lambda body: body
) -> list[str]:
    """The paths whose HTTP answer is not ``want`` (``view`` picks what of the body is compared). A request
    that fails counts as wrong: a proxied owner may be gone mid-failover, and the harness asks again later."""
    wrong = []
    for path, want in answers:
        try:
            r = seen.get(path)
            right = r.status_code == 200 and view(r.json()) == want
        except Exception:
            right = False
        if not right:
            wrong.append(path)
    return wrong
