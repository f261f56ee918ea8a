from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.core.codecs import decode_json_object
from app.core.records import DomainRules, Emit, Folded, Processed, RawRecord, TableRule
from app.core.validation import validate

UNENCODABLE = 2**70
#: Over the worker's default record limit (SWITCHYARD_MAX_RECORD_BYTES, 1,000,000): the producer would refuse it.
OVERSIZE = "x" * 1_200_000


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    poison: Literal["route", "fold", "big"] | None = None


def process(raw: RawRecord, now: datetime) -> Processed:
    thing = validate(Thing, decode_json_object(raw.value))
    return Processed(thing.id, "thing", thing, {"id": thing.id, "poison": thing.poison}, key=thing.id)


def route(p: Processed, now: datetime) -> list[Emit]:
    poison = p.enriched["poison"]
    out = {**p.enriched, "n": UNENCODABLE} if poison == "route" else p.enriched
    if poison == "big":
        out = {**p.enriched, "pad": OVERSIZE}
    return [Emit("poisondomain.out", p.key, out), Emit("poisondomain.feed", p.key, p.enriched)]


def fold(state: Any, value: Any, now: datetime) -> Folded:
    snapshot = {"id": value["id"], "n": UNENCODABLE if value["poison"] == "fold" else 1}
    return Folded(snapshot, [Emit("poisondomain.snapshot", value["id"], snapshot)])


RULES = DomainRules(
    name="poisondomain", process=process, route=route, tables=[TableRule("things", "poisondomain.feed", fold)]
)
