"""The test domain's traffic and its oracle (:mod:`app.core.traffic`): what makes it a sixth domain every harness
runs (the demo, the bench, the reliability mix, the hostile fuzzer, the AsyncAPI test) with nothing outside this
folder and its catalog file.

A stream is things with distinct ids, each counted into its own table row: about 5 % redelivered (same bytes,
absorbed by dedupe), about 5 % broken, each labelled with the code stage one must dead-letter it with.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from datetime import datetime

import orjson

from app.core.traffic import (
    Document,
    Observed,
    Traffic,
    TrafficRecord,
    TrafficSource,
    Verdict,
    wrong_answers,
)

from .rules import OUT_TOPIC, ROW_PATH

#: a break per stable code, as the rules must report it
BROKEN: tuple[tuple[bytes, str], ...] = (
    (b'{"id": "broken", "n": -1}', "SCHEMA-MINIMUM"),
    (b'{"id": "broken", "n": "1"}', "SCHEMA-TYPE"),
    (b'{"id": "broken", "n": 1, "extra": true}', "SCHEMA-ADDITIONAL-PROPERTY"),
    (b'{"id": "broken"', "DECODE-JSON"),
    (b"[]", "DECODE-NOT-OBJECT"),
)


def thing(rng: random.Random, i: int) -> dict[str, object]:
    return {"id": f"t{i}-{rng.getrandbits(32):08x}", "n": rng.randrange(1000)}


def _judge(records: Sequence[TrafficRecord], seen: Observed, verdict: Verdict) -> None:
    things = {
        doc["id"]: doc for doc in (orjson.loads(r.value or b"") for r in records if r.outcome == "accepted")
    }
    want = Counter(dict.fromkeys(things, 1))
    verdict.expected = len(want)
    got = Counter(orjson.loads(r.value or b"")["id"] for r in seen.read(OUT_TOPIC))
    verdict.processed = sum(got.values())
    verdict.compare(OUT_TOPIC, want, got)
    answers = [(ROW_PATH.format(id=i), {"total": doc["n"]}) for i, doc in things.items()]
    verdict.wrong("totals table", wrong_answers(seen, answers))


def _traffic(rng: random.Random, n: int, now: datetime) -> Traffic:
    out: list[TrafficRecord] = []
    for i in range(n):
        roll = rng.random()
        if roll < 0.05:
            value, code = rng.choice(BROKEN)
            out.append(TrafficRecord.rejected(value, b"broken", code, label=code))
        elif roll < 0.1 and out and out[-1].outcome == "accepted":
            out.append(TrafficRecord(out[-1].value, out[-1].key, label="redelivery"))
        else:
            doc = thing(rng, i)
            out.append(TrafficRecord(orjson.dumps(doc), str(doc["id"]).encode(), label="valid"))
    return Traffic(out, _judge)


def event_id_of(value: bytes | None) -> str | None:
    """A thing's event id is its id, which its output carries as is."""
    doc = orjson.loads(value) if value else None
    return str(doc["id"]) if isinstance(doc, dict) and "id" in doc else None


def _documents(rng: random.Random) -> list[Document]:
    return [(None, thing(rng, i)) for i in range(4)]


TRAFFIC = TrafficSource(
    _traffic,
    _documents,
    "Test-only things (~30 B), stage one + the totals fold",
    (OUT_TOPIC,),
    event_id_of,
    bench_records=(300, 1000),
)
