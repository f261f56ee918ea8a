from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from app.core.codecs import decode_json_object
from app.core.records import DomainRules, Emit, Folded, Processed, RawRecord, Sample, TableRule
from app.core.validation import validate

OUT_TOPIC = "testdomain.out"
FEED_TOPIC = "testdomain.feed"
TABLE = "totals"
ROW_PATH = "/api/testdomain/{id}"


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    n: int = Field(ge=0)


class Total(BaseModel):
    """A row of the totals table, as its snapshot and its HTTP answer show it."""

    model_config = ConfigDict(extra="forbid", strict=True)
    total: int


def process(raw: RawRecord, now: datetime) -> Processed:
    thing = validate(Thing, decode_json_object(raw.value))
    return Processed(
        event_id=thing.id,
        event_type="thing",
        payload=thing,
        enriched={"id": thing.id, "n": thing.n},
        key=thing.id,
    )


def route(p: Processed, now: datetime) -> list[Emit]:
    return [Emit(OUT_TOPIC, p.key, p.enriched), Emit(FEED_TOPIC, p.key, p.enriched)]


def fold(state: Any, value: Any, now: datetime) -> Folded:
    """Idempotent, as every fold must be: a redelivered feed value (at-least-once) is recognised by its event id."""
    state = state or {"total": 0, "folded": []}
    if value["id"] in state["folded"]:
        return Folded(state, changed=False)
    total = state["total"] + value["n"]
    new = {"total": total, "folded": [*state["folded"], value["id"]]}
    return Folded(new, [Emit("testdomain.snapshot", value["id"], {"total": total})])


def public(state: Any) -> Any:
    return {"total": state["total"]}


def key_of(body: bytes, event_type: str | None) -> bytes | None:
    """The thing's id, so ``switchyard produce`` and the demo key as the traffic does."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found = doc.get("id") if isinstance(doc, dict) else None
    return found.encode() if isinstance(found, str) else None


def samples() -> list[Sample]:
    return [
        Sample("one-thing", b'{"id": "sample-1", "n": 3}'),
        Sample("another", b'{"id": "sample-2", "n": 0}'),
    ]


RULES = DomainRules(
    name="testdomain",
    process=process,
    route=route,
    tables=[TableRule(TABLE, FEED_TOPIC, fold)],
    samples=samples,
    key_of=key_of,
)
