"""``switchyard demo``: a real broker, a real worker, every domain's seed samples, and what happened.

Everything runs on this machine: the embedded KRaft broker (unless SWITCHYARD_BROKER is set), the reference CRM,
and one ``switchyard worker`` subprocess; ``switchyard crm setup``'s code prepares the reference CRM first, as a
deployment does with a real portal. Per domain the demo publishes the seed samples plus one deliberately
broken record, waits until the worker has consumed them, and prints in / accepted / dead-lettered / outputs,
read from the worker's own ``/metrics``, with the topics and URLs to look at, and what became of the CRM commands
per domain (applied, dead-lettered with their codes, still waiting), read from ``crm.commands``, the sink's
committed offsets and ``crm.deadletter``: the CRM's own state is the proof, the counters only a hint.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from app.core.catalog import Catalog, catalog_of
from app.core.domain import load_domain
from app.core.kafka import producer
from app.core.records import Sample
from app.settings import Settings
from app.sinks.crm.setup import setup_portal

BROKEN_JSON = b'{"truncated": '


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def say(text: str) -> None:
    print(text, flush=True)


@contextmanager
def embedded_broker(data_dir: Path) -> Iterator[str]:
    from app.broker import EmbeddedBroker

    broker = EmbeddedBroker(data_dir=data_dir, log_file=data_dir / "kafka.log")
    started = time.monotonic()
    bootstrap = broker.start()
    say(
        f"  broker   {bootstrap} (embedded KRaft, started in {time.monotonic() - started:.1f}s, log {data_dir / 'kafka.log'})"
    )
    try:
        yield bootstrap
    finally:
        broker.stop()


@contextmanager
def subprocess_service(name: str, args: list[str], env: dict[str, str], log_file: Path) -> Iterator[None]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_http(url: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready at {url} after {timeout:.0f}s")


async def publish(settings: Settings, catalog: Catalog, domains: list[str]) -> dict[str, int]:
    sent: dict[str, int] = {}
    prod = producer(settings)
    await prod.start()
    try:
        for name in domains:
            rules = load_domain(catalog, name).rules
            topic = settings.topic(catalog.raw_topic(name).name)
            broken = Sample("broken-json", BROKEN_JSON, rules.event_types[0] if rules.event_types else None)
            samples = [*rules.samples(), broken]
            for s in samples:
                key = s.key or rules.key_of(s.value, s.event_type)
                await prod.send_and_wait(topic, s.value, key=key, headers=list(s.headers))
            sent[name] = len(samples)
    finally:
        await prod.stop()
    return sent


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for fam in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(
        v for (n, ls), v in metrics.items() if n == name and all((k, val) in ls for k, val in labels.items())
    )


def run_demo(*, once: bool, timeout: float) -> int:
    base = Settings()
    catalog = catalog_of(base)
    domains = list(catalog.domains)
    # Beside the data dir (default .switchyard/demo): SWITCHYARD_DATA_DIR moves the demo's broker, CRM and logs too.
    root = base.data_dir.parent / "demo"
    say("Switchyard demo")
    with ExitStack() as stack:
        bootstrap = base.broker or stack.enter_context(embedded_broker(root / "broker"))
        if base.broker:
            say(f"  broker   {bootstrap} (SWITCHYARD_BROKER)")
        web_port, crm_port = free_port(), free_port()
        env = {
            **os.environ,
            "SWITCHYARD_BROKER": bootstrap,
            "SWITCHYARD_APP_ID": base.app_id if base.broker else "switchyard-demo",
            "SWITCHYARD_WEB_PORT": str(web_port),
            "SWITCHYARD_DATA_DIR": str(root / "data"),
            "SWITCHYARD_CRM_BASE_URL": f"http://127.0.0.1:{crm_port}",
        }
        settings = Settings(broker=bootstrap, app_id=env["SWITCHYARD_APP_ID"], web_port=web_port)
        cli = [sys.executable, "-m", "app"]
        stack.enter_context(
            subprocess_service(
                "crm",
                [*cli, "crm-reference", "--port", str(crm_port), "--db", str(root / "crm.sqlite3")],
                env,
                root / "crm.log",
            )
        )
        crm_url = f"http://127.0.0.1:{crm_port}"
        wait_http(f"{crm_url}/__admin/stats", timeout, "reference CRM")
        steps = asyncio.run(setup_portal(crm_url, base.crm_token.get_secret_value()))
        created = sum(1 for step in steps if step.status == "created")
        say(
            f"  CRM      {crm_url} (reference CRM, state in {root / 'crm.sqlite3'}; crm setup: {created} created)"
        )
        stack.enter_context(subprocess_service("worker", [*cli, "worker"], env, root / "worker.log"))
        web = f"http://127.0.0.1:{web_port}"
        wait_http(f"{web}/health/ready", timeout, "worker")
        say(f"  worker   {web} (log {root / 'worker.log'})")
        sent = asyncio.run(publish(settings, catalog, domains))
        say(f"  published {sum(sent.values())} records: " + ", ".join(f"{d} {n}" for d, n in sent.items()))
        metrics = _wait_consumed(f"{web}/metrics", sent, timeout)
        ok = _summary(metrics, sent, catalog, settings, web)
        _dead_letters(settings, catalog, domains)
        ok = _crm(f"http://127.0.0.1:{crm_port}", f"{web}/metrics", metrics, settings, catalog) and ok
        if not once:
            say("\nRunning. Ctrl-C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0 if ok else 1


def _dead_letters(settings: Settings, catalog: Catalog, domains: list[str]) -> None:
    from app.core.deadletter import CODE, PATH, STAGE, DeadLetter
    from app.core.kafka import read_to_end

    async def read(topic: str) -> list[DeadLetter]:
        return [
            DeadLetter(topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
            async for r in read_to_end(settings, settings.topic(topic))
        ]

    say("\nDead letters (original bytes kept; error in the headers)")
    for d in domains:
        for rec in asyncio.run(read(catalog.deadletter_topic(d).name)):
            where = rec.get(PATH) or "-"
            say(f"  {d:<13}{rec.get(STAGE):<9}{rec.get(CODE):<22}path {where}")


@dataclass
class CrmOutcome:
    """What became of one domain's CRM commands."""

    applied: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    waiting: int = 0


def crm_outcomes(
    commands: Iterable[tuple[int, int, str]],
    waiting: Iterable[tuple[int, int]],
    dead: Iterable[tuple[str, str]],
) -> dict[str, CrmOutcome]:
    """Per source domain: commands (partition, offset, source) minus those past the sink's committed offsets
    (``waiting``, by partition and offset) are done; the done ones dead-lettered ((source, code) of
    ``crm.deadletter``) were refused, the rest applied."""
    pending = set(waiting)
    out: dict[str, CrmOutcome] = {}
    for partition, offset, source in commands:
        outcome = out.setdefault(source, CrmOutcome())
        if (partition, offset) in pending:
            outcome.waiting += 1
        else:
            outcome.applied += 1
    for source, code in dead:
        outcome = out.setdefault(source, CrmOutcome())
        outcome.dead[code] += 1
        outcome.applied -= 1
    return out


def _source(value: bytes | None) -> str:
    try:
        doc = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return "(not a command)"
    return str(doc.get("source") or "(no source)") if isinstance(doc, dict) else "(not a command)"


def read_crm_outcomes(settings: Settings, catalog: Catalog) -> dict[str, CrmOutcome]:
    from app.core.deadletter import CODE, DeadLetter
    from app.core.kafka import read_to_end

    commands_topic = settings.topic(catalog.get("crm.commands").name)
    dlq_topic = settings.topic(catalog.deadletter_topic("crm").name)

    async def read() -> dict[str, CrmOutcome]:
        commands = [
            (r.partition, r.offset, _source(r.value)) async for r in read_to_end(settings, commands_topic)
        ]
        group = f"{settings.app_id}-crm-sink"
        waiting = [
            (r.partition, r.offset)
            async for r in read_to_end(settings, commands_topic, group_id=group, from_committed=True)
        ]
        dead = [
            (
                _source(r.value),
                DeadLetter(dlq_topic, r.partition, r.offset, r.key, r.value, tuple(r.headers or ())).get(
                    CODE
                ),
            )
            async for r in read_to_end(settings, dlq_topic)
        ]
        return crm_outcomes(commands, waiting, dead)

    return asyncio.run(read())


def _crm(
    url: str,
    metrics_url: str,
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    settings: Settings,
    catalog: Catalog,
) -> bool:
    """The CRM commands' outcomes per domain and the CRM's state; True when every command is done and none was
    dead-lettered (the seed samples are all valid for the CRM)."""
    sent = int(total(metrics, "switchyard_outputs_total", topic="crm.commands"))
    deadline = time.monotonic() + 30
    outcomes = read_crm_outcomes(settings, catalog)
    while time.monotonic() < deadline and any(o.waiting for o in outcomes.values()):
        time.sleep(0.5)
        outcomes = read_crm_outcomes(settings, catalog)
    say(f"\nCRM commands ({sent} written to crm.commands)")
    say(f"  {'domain':<13}{'applied':>8}{'waiting':>9}  dead-lettered")
    for source, o in sorted(outcomes.items()):
        dead = ", ".join(f"{code} {n}" for code, n in sorted(o.dead.items())) or "0"
        say(f"  {source:<13}{o.applied:>8}{o.waiting:>9}  {dead}")
    state = httpx.get(f"{url}/__admin/state", timeout=5).json()
    meetings = state.get("meetings", [])
    linked = sum(1 for m in meetings if m.get("contacts"))
    say(
        f"  CRM state: {len(state.get('contacts', []))} contact(s), {len(meetings)} meeting(s), {linked} of them"
        f" on a contact; inspect with GET {url}/__admin/state"
    )
    return all(not o.waiting and not o.dead for o in outcomes.values())


def _wait_consumed(
    url: str, sent: dict[str, int], timeout: float
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    deadline = time.monotonic() + timeout
    while True:
        metrics = scrape(url)
        done = all(
            total(metrics, "switchyard_events_in_total", domain=d) >= n
            and total(metrics, "switchyard_events_accepted_total", domain=d)
            + total(metrics, "switchyard_events_rejected_total", domain=d)
            + total(metrics, "switchyard_dedupe_hits_total", domain=d)
            >= n
            for d, n in sent.items()
        )
        if done or time.monotonic() > deadline:
            time.sleep(1.0)  # let stage two (tables, snapshots) catch up before the final scrape
            return scrape(url)
        time.sleep(0.5)


def _summary(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float],
    sent: dict[str, int],
    catalog: Catalog,
    settings: Settings,
    web: str,
) -> bool:
    ok = True
    say("\nWhat happened")
    say(f"  {'domain':<13}{'sent':>5}{'in':>5}{'accepted':>10}{'dead-lettered':>15}{'dupes':>7}  outputs")
    for d, n in sent.items():
        seen = total(metrics, "switchyard_events_in_total", domain=d)
        acc = total(metrics, "switchyard_events_accepted_total", domain=d)
        rej = total(metrics, "switchyard_events_rejected_total", domain=d)
        dup = total(metrics, "switchyard_dedupe_hits_total", domain=d)
        outs = ", ".join(
            f"{t.name} {int(total(metrics, 'switchyard_outputs_total', topic=t.name))}"
            for t in catalog.of_domain(d)
            if t.role in ("output", "snapshot", "unhandled")
            and total(metrics, "switchyard_outputs_total", topic=t.name)
        )
        ok = ok and seen >= n and acc + rej + dup >= n
        say(f"  {d:<13}{n:>5}{int(seen):>5}{int(acc):>10}{int(rej):>15}{int(dup):>7}  {outs or '-'}")
    crm = int(total(metrics, "switchyard_outputs_total", topic="crm.commands"))
    say(f"  crm.commands written: {crm}")
    say("\nWhere to look")
    say(f"  metrics      {web}/metrics")
    say(f"  health       {web}/health/ready")
    say(
        "  dead letters SWITCHYARD_BROKER=... switchyard dlq list   (one broken record per domain is expected)"
    )
    say(f"  topics       prefix '{settings.topic_prefix}' on {settings.broker}: switchyard topics list")
    if not ok:
        say("\nSome samples were not processed in time: see the worker log.")
    return ok
