"""A CRM backlog against the reference CRM: how many calls, how much of the rate budget, and was it right.

``run_backlog`` is what ``bench`` calls for the "CRM efficiency" figures; the integration tests use the same
workload. The workload looks like Vome traffic: a volunteer's profile exists before anything else happens to them (first
command, and first after an erasure, is an upsert), then mostly contact upserts (profiles, forms, onboarding),
bookings as activities, a few archives and cancellations, and rare GDPR erasures (0.2 %: each is a call of its
own, HubSpot has no batch GDPR delete). Seeded, so every run sends the same commands.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from app.sinks.crm.commands import CrmCommand, PropertyValue
from app.sinks.crm.hubspot import HubSpotAdapter
from app.sinks.crm.limiter import RateLimiter
from app.sinks.crm.model import expected_state, normalize_state
from app.sinks.crm.reference import ReferenceCrm
from app.sinks.crm.service import MAX_BATCH
from app.sinks.crm.sink import CrmSink, DeadLetter, NoHooks, SinkConfig

START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
TOKEN = "bench-token"
_OPS = (
    ["contact.upsert"] * 390
    + ["activity.upsert"] * 75
    + ["activity.delete"] * 10
    + ["contact.archive"] * 14
    + ["contact.erase"]
)
_CITIES = ["Brno", "Praha", "Oslo", "Lyon", None]


def generate_commands(n_commands: int, n_contacts: int, seed: int = 0) -> list[CrmCommand]:
    """``n_commands`` commands over ``n_contacts`` contacts, in an order a topic partition could hold."""
    rng = random.Random(seed)
    out: list[CrmCommand] = []
    live: set[str] = set()
    bookings: dict[str, set[str]] = {}
    for i in range(n_commands):
        contact = f"vome-{rng.randrange(n_contacts):05d}"
        op = rng.choice(_OPS) if contact in live else "contact.upsert"
        if op == "activity.delete" and not bookings.get(contact):
            op = "activity.upsert"
        if op == "contact.erase":
            live.discard(contact)
        else:
            live.add(contact)
        props: dict[str, PropertyValue] = {}
        activity: str | None = None
        if op == "contact.upsert":
            props = {"vome_user_id": contact, "source_system": "vome"}
            for name, value in (
                ("firstname", rng.choice(["Ana", "Bo", "Cyril", "Dana"])),
                ("city", rng.choice(_CITIES)),
                ("email", f"{contact}@example.org"),
                ("vome_onboarding_steps_done", rng.randrange(6)),
                ("vome_last_form_status", rng.choice(["submitted", "approved", "deleted"])),
            ):
                if rng.random() < 0.5:
                    props[name] = value
        elif op == "contact.archive":
            props = {"vome_status": "archived"}
        elif op == "activity.delete":
            activity = rng.choice(sorted(bookings[contact]))
            bookings[contact].discard(activity)
        elif op == "activity.upsert":
            activity = f"{contact}-b{rng.randrange(3)}"
            bookings.setdefault(contact, set()).add(activity)
            start = START + timedelta(hours=rng.randrange(500))
            props = {
                "title": rng.choice(["Kitchen shift", "Reception", "Warehouse"]),
                "start": start.isoformat().replace("+00:00", "Z"),
                "end": (start + timedelta(hours=3)).isoformat().replace("+00:00", "Z"),
                "status": rng.choice(["SCHEDULED", "COMPLETED"]),
                "kind": "volunteer_shift",
            }
        out.append(
            CrmCommand(
                command_id=f"bench-{seed}-{i:07d}",
                op=op,
                contact_id=contact,
                activity_id=activity,
                properties=props,
                source="vome",
                source_event_id=f"ev-{seed}-{i}",
                issued_at=START + timedelta(seconds=i),
            )
        )
    return out


class CallCounter(NoHooks):
    """What the sink sent, per op: HTTP calls (and when each ended), and the inputs of its planned batches."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.calls: Counter[str] = Counter()
        self.inputs: Counter[str] = Counter()
        self.ended: list[float] = []
        self._monotonic = monotonic

    def call(self, op: str, status: str) -> None:
        self.calls[op] += 1
        self.ended.append(self._monotonic())

    def batch_size(self, op: str, size: int) -> None:
        self.inputs[op] += size

    def contacts_per_call(self) -> float:
        """Contact records written per HTTP call spent on contacts (upsert, archive, erase): the batching figure.
        Activities' calls are left out: they write meetings, and their count follows the traffic mix."""
        calls = sum(n for op, n in self.calls.items() if op.startswith("contact."))
        written = sum(n for op, n in self.inputs.items() if op.startswith("contact."))
        return written / calls if calls else 0.0

    def budget_used(self, limit: int, window: float) -> float | None:
        """Share of the call budget spent while the backlog lasted: calls in the whole windows between the first
        call and the last, over ``limit`` per window. The last, partial window is left out (the backlog ran out
        there, not the budget); None when the backlog took less than one window."""
        if not self.ended:
            return None
        first = self.ended[0]
        windows = int((self.ended[-1] - first) // window)
        if windows == 0:
            return None
        inside = sum(1 for t in self.ended if t < first + windows * window)
        return inside / (limit * windows)


async def drain(
    url: str,
    commands: list[CrmCommand],
    limit: int,
    window: float,
    *,
    chunk: int = 0,
    timeout: float = 5.0,
    hooks: CallCounter | None = None,
) -> list[DeadLetter]:
    """Send ``commands`` through a fresh sink (HubSpot adapter, the given budget); ``chunk`` > 0 splits them
    into ``write`` calls of that many, as a consumer's poll batches would."""
    async with httpx.AsyncClient(base_url=url, timeout=timeout) as client:
        adapter = HubSpotAdapter(url, TOKEN, client=client)
        sink = CrmSink(
            adapter,
            RateLimiter(limit, window),
            SinkConfig(backoff_base=0.05, backoff_cap=0.25, breaker_reset=0.5),
            hooks=hooks,
        )
        size = chunk or len(commands) or 1
        dead: list[DeadLetter] = []
        for start in range(0, len(commands), size):
            dead += await sink.write(commands[start : start + size])
        return dead


async def run_backlog_async(
    n_commands: int = 5000,
    n_contacts: int = 500,
    limit: int = 100,
    window: float = 60.0,
    *,
    seed: int = 0,
    chunk: int = MAX_BATCH,
) -> dict[str, Any]:
    """``chunk``: commands per ``write``, the worker's poll batch by default, so planning is paid as it would be."""
    commands = generate_commands(n_commands, n_contacts, seed)
    async with ReferenceCrm(limit=limit, window=window) as crm:
        counter = CallCounter()
        began = time.monotonic()
        dead = await drain(crm.url, commands, limit, window, chunk=chunk, hooks=counter)
        seconds = time.monotonic() - began
        stats = crm.stats()
        state = normalize_state(crm.state())
    want_state, refused = expected_state(commands)
    calls = int(stats["calls"])
    contacts = len({c.contact_id for c in commands})
    return {
        "commands": n_commands,
        "contacts": contacts,
        "calls": calls,
        "contacts_per_call": counter.contacts_per_call(),
        "distinct_contacts_per_call": contacts / calls if calls else 0.0,
        "calls_by_op": dict(sorted(counter.calls.items())),
        "commands_per_call": n_commands / calls if calls else 0.0,
        "budget_used": counter.budget_used(limit, window),
        "max_calls_in_window": stats["max_calls_in_window"],
        "limit": limit,
        "window": window,
        "seconds": seconds,
        "dead_letters": len(dead),
        "state_matches": state == want_state and {d.command.command_id for d in dead} == set(refused),
    }


def run_backlog(
    n_commands: int = 5000, n_contacts: int = 500, limit: int = 100, window: float = 60.0
) -> dict[str, Any]:
    """The backlog figures (``contacts_per_call``: see :meth:`CallCounter.contacts_per_call`;
    ``distinct_contacts_per_call``: distinct contacts of the workload / all HTTP calls; ``budget_used``: see
    :meth:`CallCounter.budget_used`). Starts its own event loop."""
    return asyncio.run(run_backlog_async(n_commands, n_contacts, limit, window))


if __name__ == "__main__":
    import json

    print(json.dumps(run_backlog(window=1.0), indent=2))
