"""A steady load mixing all five domains, and the checkers that say what of it was lost or duplicated.

The traffic is each domain's own generator (redeliveries, reordering, stale updates and broken records included)
and the expectations are the generators' own references, reused from the integration tests' helpers, never the
rules. The checks are Jepsen's, per domain and per output: a *lost* write is an expected output (or table answer)
that is absent once the worker has caught up; a *duplicate* is an output seen more than once. Duplicates fail a
check only where exactly-once or dedupe before output is promised (the Pismo audit, read_committed); on the
at-least-once outputs a crash may replay a micro-batch, so they are counted and reported instead.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.core import deadletter as dl
from app.core.engine import encoded
from app.core.records import content_event_id
from app.domains.appointments.generate import Generated as AppointmentRecord
from app.domains.appointments.generate import reference_final_states, traffic
from app.domains.appointments.views import APPOINTMENT_PATH
from app.domains.lara.generate import ACCEPT as LARA_ACCEPT
from app.domains.lara.generate import History, member_history, reference_compliance
from app.domains.phoenix.generate import (
    ACCEPT,
    UNHANDLED,
    GeneratedRecord,
    reference_coach_activity,
    reference_progress,
    session_stream,
)
from app.domains.pismo.generate import Generated as PismoRecord
from app.domains.pismo.generate import generate as pismo_stream
from app.domains.pismo.generate import reference_phase_counts
from app.domains.pismo.views import PHASE_PATH
from app.domains.vome.generate import Generated as VomeRecord
from app.domains.vome.generate import generate as vome_stream
from app.domains.vome.rules import TOPICS as VOME_PROJECTIONS
from app.domains.vome.state import FEED_TOPIC as VOME_FEED
from app.domains.vome.state import fold_volunteer
from tests.integration.test_lara import latest_per_key, wrong_compliance, wrong_timelines
from tests.integration.test_phoenix import wrong_answers
from tests.integration.test_pismo import Expected, decoded_audit, stage_done
from tests.reliability.privacy import planted
from tests.worker import Deployment, Worker, produce, read_all, wait_until

Rec = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
DOMAINS = ("phoenix", "vome", "pismo", "appointments", "lara")
#: A SIGKILLed worker leaves its group after the session timeout: 6 s is the broker's minimum.
FAST_FAILOVER = {"SWITCHYARD_SESSION_TIMEOUT_SECONDS": "6", "SWITCHYARD_HEARTBEAT_INTERVAL_SECONDS": "1"}


@dataclass
class Tally:
    """One domain's figures, Jepsen-style. ``problems`` are failures; duplicates on at-least-once outputs are
    not."""

    sent: int = 0
    expected: int = 0
    processed: int = 0
    lost: int = 0
    duplicated: int = 0
    dead_lettered: int = 0
    problems: list[str] = field(default_factory=list)

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


def _missing(tally: Tally, what: str, want: Counter[Any], got: Counter[Any]) -> None:
    """Every ``want`` at least as often in ``got``; extra copies counted as duplicates."""
    short = want - got
    if short:
        tally.lost += sum(short.values())
        tally.problems.append(f"{what}: {sum(short.values())} missing")
    tally.duplicated += sum((got - want).values())


def _dead(d: Deployment, domain: str, isolation: str = "read_committed") -> Counter[tuple[bytes | None, str]]:
    return Counter(
        (r.value, dict(r.headers)[dl.CODE].decode())
        for r in read_all(d.settings, f"{domain}.deadletter", isolation)
    )


def _today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class Mix:
    """One mixed stream: every domain's records in publishing order, and their references."""

    phoenix: list[GeneratedRecord]
    vome: list[VomeRecord]
    pismo: list[PismoRecord]
    appointments: list[AppointmentRecord]
    lara: History
    #: personal data planted in Vome deliveries (scenario 6 scans for it afterwards), and their volunteers
    secrets: list[str] = field(default_factory=list)
    volunteers: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, seed: int, scale: int = 1, planted_rounds: int = 0) -> Mix:
        """``planted_rounds``: that many deliveries per Vome trigger carry markers in every kept-back field."""
        rng = random.Random(seed)
        marked = planted(rng, planted_rounds)
        vome = vome_stream(rng, 400 * scale)
        for record in marked.records:  # at random places, each stream's own order kept
            vome.insert(rng.randint(0, len(vome)), record)
        return cls(
            phoenix=session_stream(rng, sessions=250 * scale, talents=30 * scale, coaches=6),
            vome=vome,
            pismo=pismo_stream(rng, 600 * scale, invalid_ratio=0.1, duplicate_ratio=0.05),
            appointments=traffic(rng, 80 * scale, duplicate_rate=0.05, invalid_rate=0.03, shuffle=True),
            # The worker renders compliance at its own clock; the history ends a day before ``now`` and its next
            # boundaries are years away, so a day-aligned ``now`` keeps a seed's mix the same all day long.
            lara=member_history(rng, now=_today(), members=20 * scale, changes=150 * scale),
            secrets=marked.secrets,
            volunteers=marked.users,
        )

    def records(self, domain: str) -> list[Rec]:
        if domain == "phoenix":
            return [(r.key, r.value, []) for r in self.phoenix]
        if domain == "vome":
            return [(g.key, g.value, list(g.headers)) for g in self.vome]
        if domain == "pismo":
            return [(g.key, g.value, []) for g in self.pismo]
        if domain == "appointments":
            return [(g.key, g.value, []) for g in self.appointments]
        return [(r.key, r.value, list(r.headers)) for r in self.lara.records]

    @property
    def size(self) -> int:
        return sum(len(self.records(d)) for d in DOMAINS)

    def chunks(self, n: int) -> Iterator[dict[str, list[Rec]]]:
        """The stream in ``n`` slices, each holding every domain's next share (per-domain order kept)."""
        for i in range(n):
            out = {}
            for domain in DOMAINS:
                records = self.records(domain)
                step = -(-len(records) // n)
                out[domain] = records[i * step : (i + 1) * step]
            yield out


def publish(d: Deployment, chunk: dict[str, list[Rec]]) -> None:
    for domain, records in chunk.items():
        if records:
            produce(d.settings, f"{domain}.raw", records)


# ---- the checkers ---------------------------------------------------------------------------------------------
def check_phoenix(d: Deployment, w: Worker, mix: Mix) -> Tally:
    t = Tally(sent=len(mix.phoenix))
    accepted = Counter({json.loads(v)["id"]: 1 for v in {r.value for r in mix.phoenix if r.expect == ACCEPT}})
    t.expected = sum(accepted.values())
    enriched = Counter(
        json.loads(r.value)["eventId"] for r in read_all(d.settings, "phoenix.sessions.enriched")
    )
    t.processed = len(enriched)
    _missing(t, "phoenix.sessions.enriched", accepted, enriched)
    unhandled = Counter(set((r.key, r.value) for r in mix.phoenix if r.expect == UNHANDLED))
    passed = Counter((r.key, r.value) for r in read_all(d.settings, "phoenix.unhandled"))
    _missing(t, "phoenix.unhandled", unhandled, passed)
    invalid = Counter(set((r.value, r.expect) for r in mix.phoenix if r.expect not in (ACCEPT, UNHANDLED)))
    dead = _dead(d, "phoenix")
    t.dead_lettered = sum(dead.values())
    _missing(t, "phoenix.deadletter", invalid, Counter(set(dead)))
    wrong = wrong_answers(w, reference_progress(mix.phoenix), reference_coach_activity(mix.phoenix))
    if wrong:
        t.lost += len(wrong)
        t.problems.append(f"phoenix tables: {len(wrong)} answers differ from the reference")
    return t


#: The fold's clock only stamps what it writes (erasure time, command times), never what it decides.
FOLD_NOW = datetime(2026, 1, 1, tzinfo=UTC)


def commanded_by_fold(feed: list[Any]) -> set[str]:
    """The source events of every CRM command the volunteers fold makes of ``feed`` (records in partition order),
    replayed through the pure fold itself: the reference for ``crm.commands`` whatever order the feed took."""
    states: dict[bytes | None, Any] = {}
    out: set[str] = set()
    for r in feed:
        folded = fold_volunteer(states.get(r.key), json.loads(r.value) if r.value else None, FOLD_NOW)
        if folded.changed:
            states[r.key] = folded.state
        out.update(
            json.loads(e.value)["source_event_id"]
            for e in map(encoded, folded.emits)
            if e.topic == "crm.commands" and e.value
        )
    return out


def check_vome(d: Deployment, w: Worker, mix: Mix) -> Tally:
    t = Tally(sent=len(mix.vome))
    valid = {content_event_id(g.trigger or "", json.loads(g.value)): g for g in mix.vome if g.code is None}
    projected = Counter({e: 1 for e, g in valid.items() if g.trigger != "profile.deleted"})
    t.expected = sum(projected.values())
    got: Counter[str] = Counter()
    for topic in VOME_PROJECTIONS.values():
        got.update(
            json.loads(r.value)["event_id"] for r in read_all(d.settings, topic) if r.value is not None
        )
    t.processed = sum(got.values())
    _missing(t, "vome projections", projected, got)
    # Every valid delivery reaches the volunteers feed; the CRM commands are what the fold makes of that feed in its
    # own order (design note 13: nothing after an erasure or for a deleted entity, so which deliveries get commands
    # depends on the order a volunteer's deliveries from several raw partitions reached the feed).
    feed = read_all(d.settings, VOME_FEED)
    on_feed = Counter(
        {e: 1 for e in (json.loads(r.value).get("event_id") for r in feed if r.value) if e in valid}
    )
    _missing(t, "vome volunteers feed", Counter(dict.fromkeys(valid, 1)), on_feed)
    commands = Counter(json.loads(r.value)["source_event_id"] for r in read_all(d.settings, "crm.commands"))
    _missing(t, "vome crm.commands", Counter(dict.fromkeys(commanded_by_fold(feed), 1)), commands)
    invalid = Counter(set((g.value, g.code or "") for g in mix.vome if g.code is not None))
    dead = _dead(d, "vome")
    t.dead_lettered = sum(dead.values())
    _missing(t, "vome.deadletter", invalid, Counter(set(dead)))
    return t


def check_pismo(d: Deployment, w: Worker, mix: Mix) -> Tally:
    """Exactly-once: a duplicate audit record or dead letter is a failure here, not a figure."""
    t = Tally(sent=len(mix.pismo))
    expected = Expected.of(mix.pismo)
    t.expected = len(expected.firsts)
    if not stage_done(d):
        t.lost = t.expected
        t.problems.append("pismo: stage one has not committed every raw record")
        return t
    audits = Counter(a["original_sha256"] for a in decoded_audit(read_all(d.settings, "audit.migration")))
    t.processed = sum(audits.values())
    _missing(t, "audit.migration", Counter(dict.fromkeys(expected.firsts, 1)), audits)
    dead = _dead(d, "pismo")
    t.dead_lettered = sum(dead.values())
    _missing(t, "pismo.deadletter", Counter((g.value, g.expected_code or "") for g in expected.invalid), dead)
    if t.duplicated:
        t.problems.append(f"pismo: {t.duplicated} duplicates under read_committed")
    # One phase at a time: that query is routed to the phase's owner, where the list answers only for the
    # partitions the asked worker holds.
    wrong = [
        phase
        for phase, counts in reference_phase_counts(mix.pismo).items()
        if (r := w.get(PHASE_PATH.format(phase_key=phase))).status_code != 200
        or r.json()["by_operation"] != counts
    ]
    if wrong:
        t.lost += len(wrong)
        t.problems.append(f"pismo phases table: {wrong} differ from the reference")
    return t


def check_appointments(d: Deployment, w: Worker, mix: Mix) -> Tally:
    t = Tally(sent=len(mix.appointments))
    delivered = [json.loads(g.value) for g in mix.appointments if g.expected_code is None]
    ids = Counter({doc["id"]: 1 for doc in delivered})
    t.expected = sum(ids.values())
    enriched = Counter(json.loads(r.value)["event_id"] for r in read_all(d.settings, "appointments.enriched"))
    t.processed = sum(enriched.values())
    _missing(t, "appointments.enriched", ids, enriched)
    invalid = Counter(set((g.value, g.expected_code or "") for g in mix.appointments if g.expected_code))
    dead = _dead(d, "appointments")
    t.dead_lettered = sum(dead.values())
    _missing(t, "appointments.deadletter", invalid, Counter(set(dead)))
    fields = ("status", "event_id", "updated_at", "start", "applied_count", "stale_count")
    wrong = 0
    for appointment, want in reference_final_states(delivered).items():
        r = w.get(APPOINTMENT_PATH.format(appointmentId=appointment))
        if r.status_code != 200 or {f: r.json()[f] for f in fields} != want:
            wrong += 1
    if wrong:
        t.lost += wrong
        t.problems.append(f"appointments table: {wrong} answers differ from the reference")
    return t


def check_lara(d: Deployment, w: Worker, mix: Mix) -> Tally:
    history = mix.lara
    t = Tally(sent=len(history.records))
    compliance = reference_compliance(history)
    t.expected = len(compliance)
    snapshots = latest_per_key(d, "lara.compliance")
    t.processed = sum(1 for k in compliance if snapshots.get(k) == compliance[k])
    wrong = sorted(set(wrong_compliance(w, compliance)) | set(wrong_timelines(w, history)))
    if wrong or t.processed != t.expected:
        t.lost += len(wrong) + t.expected - t.processed
        t.problems.append(f"lara: {len(wrong)} members answered unlike the reference, e.g. {wrong[:3]}")
    invalid = Counter(set((r.value, r.expect) for r in history.records if r.expect != LARA_ACCEPT))
    dead = _dead(d, "lara")
    t.dead_lettered = sum(dead.values())
    _missing(t, "lara.deadletter", invalid, Counter(set(dead)))
    return t


CHECKS: dict[str, Callable[[Deployment, Worker, Mix], Tally]] = {
    "phoenix": check_phoenix,
    "vome": check_vome,
    "pismo": check_pismo,
    "appointments": check_appointments,
    "lara": check_lara,
}


def check_all(d: Deployment, w: Worker, mix: Mix) -> dict[str, Tally]:
    out = {}
    for domain, check in CHECKS.items():
        try:
            out[domain] = check(d, w, mix)
        except Exception as exc:  # a worker mid-restart answers nothing yet: not caught up, ask again
            out[domain] = Tally(problems=[f"{domain}: check failed: {type(exc).__name__}"], lost=-1)
    return out


def caught_up(tallies: dict[str, Tally]) -> bool:
    return all(t.lost == 0 and not t.problems for t in tallies.values())


def crashed_agents(w: Worker) -> int:
    """Agents Faust restarted after an exception, from the worker's log: a crash the worker survived."""
    try:
        return w.log.read_text(errors="replace").count("]: Crashed reason=")
    except OSError:
        return 0


def settle(d: Deployment, w: Worker, mix: Mix, timeout: float) -> dict[str, Tally]:
    """Check until nothing is missing or ``timeout`` passes; the last tallies either way, so a failing run
    still reports how much was lost."""
    last: dict[str, dict[str, Tally]] = {}

    def done() -> bool:
        last["t"] = check_all(d, w, mix)
        return caught_up(last["t"])

    with contextlib.suppress(TimeoutError):
        wait_until(done, timeout=timeout, interval=2.0, what="every output of the mix")
    return last["t"]


def events_in(w: Worker) -> float:
    try:
        return w.metric("switchyard_events_in_total")
    except Exception:  # not answering yet
        return 0.0


def figures(tallies: dict[str, Tally], **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {domain: t.figures() for domain, t in tallies.items()}
    out["total"] = {
        key: sum(t.figures()[key] for t in tallies.values())
        for key in ("sent", "processed", "lost", "duplicated", "dead_lettered")
    } | extra
    return out
