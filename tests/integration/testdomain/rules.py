from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.core.codecs import decode_json_object
from app.core.records import DomainRules, Emit, Folded, Processed, RawRecord, TableRule
from app.core.validation import validate


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    n: int = Field(ge=0)


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
    return [Emit("testdomain.out", p.key, p.enriched), Emit("testdomain.feed", p.key, p.enriched)]


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


RULES = DomainRules(
    name="testdomain", process=process, route=route, tables=[TableRule("totals", "testdomain.feed", fold)]
)
