"""The call planner: an ordered list of commands -> an ordered list of batch calls with the same effect.

Executing the plan call after call must leave the CRM exactly as executing the commands one by one would (see
``model.py``). Two commands may only trade places when they commute:

- contact ops *write* their contact; activity ops *read* their contact (it must exist, an erase removes the
  contact's meetings) and *write* their activity;
- two commands conflict when one writes what the other reads or writes. Readers commute with readers, so any
  number of activities of one contact share a batch.

Each command goes into the earliest call after the last call holding a conflicting command: into a batch of
its op with room, or a new call at the end. Right at that last conflicting call, a command of the same op and
target is merged into the existing input instead (coalescing: later properties win, a ``None`` that clears a
property wins too). This is greedy list scheduling; it keeps each target's commands in their order and never
puts two inputs for one target in one batch (HubSpot rejects duplicate ids in a batch).

Contacts are matched by the ``contact_id`` value alone for conflicts (an e-mail and an external id that happen
to be equal are treated as one contact: only more order, never less), and by (``id_property``, ``contact_id``)
for merging. A contact op that sets a unique property (``email``, ``external_id``...) also writes that value, so
two contacts claiming one value keep their order.

What is promised is the order Kafka promises upstream: per ``contact_id`` (the key of ``crm.commands``). Effects
*between* contacts through unique values (contact A gives up an e-mail, contact B takes it) are not ordered; the
CRM then refuses B's claim (409), which is dead-lettered and can be replayed.

A merged input the CRM refuses is not proof that each of its commands would have been refused: the sink then
re-sends its sources one at a time (:attr:`Item.sources`), which is exact because a refused input changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.sinks.crm.commands import CommandOp, CrmCommand, PropertyValue
from app.sinks.crm.properties import UNIQUE_CONTACT_PROPERTIES

Resource = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Item:
    """One input of a call: the command sent (merged when it coalesces several) and the commands it stands for."""

    command: CrmCommand
    sources: tuple[CrmCommand, ...]


@dataclass(frozen=True, slots=True)
class Call:
    op: CommandOp
    items: tuple[Item, ...]

    @property
    def commands(self) -> list[CrmCommand]:
        return [item.command for item in self.items]

    @property
    def sources(self) -> list[CrmCommand]:
        return [src for item in self.items for src in item.sources]


def merge_key(cmd: CrmCommand) -> tuple[str, ...]:
    """Commands with equal merge keys (and op) target the same record the same way and may coalesce."""
    if cmd.op.startswith("contact."):
        return (cmd.op, cmd.id_property, cmd.contact_id)
    return (cmd.op, cmd.activity_id or "", cmd.id_property, cmd.contact_id)


def _reads(cmd: CrmCommand) -> tuple[Resource, ...]:
    return (("contact", cmd.contact_id),) if cmd.op.startswith("activity.") else ()


def _writes(cmd: CrmCommand) -> tuple[Resource, ...]:
    if cmd.op.startswith("activity."):
        return (("activity", cmd.activity_id or ""),)
    claims = {str(v) for k, v in cmd.properties.items() if k in UNIQUE_CONTACT_PROPERTIES and v is not None}
    return tuple(("contact", value) for value in sorted(claims | {cmd.contact_id}))


def merged_id(command_ids: Sequence[str]) -> str:
    """A stable id for a coalesced input: the same commands always give the same idempotency key."""
    if len(command_ids) == 1:
        return command_ids[0]
    return hashlib.sha256("\x00".join(command_ids).encode()).hexdigest()


def coalesce(sources: Sequence[CrmCommand]) -> CrmCommand:
    """One command equivalent to ``sources`` (same op and target) applied in order."""
    last = sources[-1]
    if len(sources) == 1:
        return last
    props: dict[str, PropertyValue] = {}
    for src in sources:
        props.update(src.properties)
    return last.model_copy(
        update={"command_id": merged_id([s.command_id for s in sources]), "properties": props}
    )


@dataclass
class _Open:
    """A call under construction: its input groups, and which groups read or write each resource."""

    op: CommandOp
    order: list[tuple[str, ...]] = field(default_factory=list)
    groups: dict[tuple[str, ...], list[CrmCommand]] = field(default_factory=dict)
    readers: dict[Resource, set[tuple[str, ...]]] = field(default_factory=dict)
    writers: dict[Resource, set[tuple[str, ...]]] = field(default_factory=dict)

    def add(self, cmd: CrmCommand, key: tuple[str, ...]) -> None:
        if key not in self.groups:
            self.order.append(key)
            self.groups[key] = []
        self.groups[key].append(cmd)
        for res in _reads(cmd):
            self.readers.setdefault(res, set()).add(key)
        for res in _writes(cmd):
            self.writers.setdefault(res, set()).add(key)

    def conflicts(self, cmd: CrmCommand) -> set[tuple[str, ...]]:
        """Groups of this call that ``cmd`` does not commute with."""
        out: set[tuple[str, ...]] = set()
        for res in (*_reads(cmd), *_writes(cmd)):
            out |= self.writers.get(res, set())
        for res in _writes(cmd):
            out |= self.readers.get(res, set())
        return out

    def freeze(self) -> Call:
        return Call(self.op, tuple(Item(coalesce(self.groups[k]), tuple(self.groups[k])) for k in self.order))


def plan(
    commands: Sequence[CrmCommand],
    batch_limit: Callable[[CommandOp], int] | int = 100,
    mergeable: Callable[[CrmCommand], bool] = lambda cmd: True,
) -> list[Call]:
    """The calls that apply ``commands`` (in order) with as few calls as the order allows.

    ``mergeable`` says whether a command may coalesce with others: a command the CRM will refuse must travel
    alone, or a later valid command merged over it would make the refusal disappear.
    """

    def limit_of(op: CommandOp) -> int:
        return batch_limit if isinstance(batch_limit, int) else batch_limit(op)

    calls: list[_Open] = []
    last_write: dict[Resource, int] = {}
    last_read: dict[Resource, int] = {}
    for cmd in commands:
        reads, writes = _reads(cmd), _writes(cmd)
        dep = max(
            [last_write.get(r, -1) for r in (*reads, *writes)] + [last_read.get(r, -1) for r in writes],
            default=-1,
        )
        key = merge_key(cmd) if mergeable(cmd) else (*merge_key(cmd), cmd.command_id)
        index = -1
        if dep >= 0 and calls[dep].op == cmd.op and calls[dep].conflicts(cmd) <= {key}:
            index = dep
        if index < 0:
            limit = limit_of(cmd.op)
            index = next(
                (
                    i
                    for i in range(dep + 1, len(calls))
                    if calls[i].op == cmd.op and len(calls[i].order) < limit
                ),
                len(calls),
            )
            if index == len(calls):
                calls.append(_Open(cmd.op))
        calls[index].add(cmd, key)
        for r in writes:
            last_write[r] = max(last_write.get(r, -1), index)
        for r in reads:
            last_read[r] = max(last_read.get(r, -1), index)
    return [call.freeze() for call in calls]
