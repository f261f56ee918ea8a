"""``switchyard``: run workers and the demo, manage topics and dead letters, check and produce records.

Every command reads the same settings (``SWITCHYARD_*`` environment variables; see ``app/settings.py``).
Exit codes: 0 success, 1 rejected record / failed check, 2 usage or configuration error.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson

from app import __version__
from app.core.catalog import Catalog, catalog_of
from app.core.domain import load_domain
from app.core.errors import ConfigError, RecordError, SwitchyardError
from app.core.records import EVENT_TYPE_HEADER, DomainRules, RawRecord
from app.settings import Settings


def _settings() -> Settings:
    return Settings()


def _catalog(settings: Settings) -> Catalog:
    return catalog_of(settings)


def _rules(settings: Settings, domain: str) -> DomainRules:
    cat = _catalog(settings)
    if domain not in cat.domains:
        raise click.BadParameter(
            f"unknown domain {domain!r}; known: {', '.join(cat.domains)}", param_hint="DOMAIN"
        )
    return load_domain(cat, domain).rules


def _echo_json(obj: Any) -> None:
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def _require_broker(settings: Settings) -> None:
    if not settings.broker:
        raise click.UsageError("SWITCHYARD_BROKER is not set (host:port of a Kafka bootstrap server)")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="switchyard")
def main() -> None:
    """Switchyard: validate, enrich, keep state for and route the events of five upstream systems on Kafka.

    \b
    Start here:
      switchyard demo --once        embedded broker + worker + seed samples, then a summary
      switchyard worker             run a worker against SWITCHYARD_BROKER
      switchyard check pismo FILE   validate + enrich one record offline, exit 0/1
    Settings come from SWITCHYARD_* environment variables (see README "Configuration").
    """


# ---- worker ----------------------------------------------------------------------------------------------------
@main.command()
@click.option(
    "--create-topics/--no-create-topics",
    default=True,
    show_default=True,
    help="Create missing catalog topics before starting.",
)
def worker(create_topics: bool) -> None:
    """Run a worker: every catalog domain's agents, tables, HTTP endpoints and the CRM sink.

    Workers sharing SWITCHYARD_APP_ID form one consumer group: start more to scale out (up to the partition count).
    """
    settings = _settings()
    _require_broker(settings)
    _setup_logging(settings.log_level)
    if create_topics:
        from app.core.admin import ensure_topics

        report = asyncio.run(ensure_topics(settings, _catalog(settings)))
        for line in report.drift:
            logging.getLogger("switchyard").warning("topic drift: %s", line)
    from app.core.runtime import run_worker
    from app.main import create_app

    run_worker(create_app(settings), settings.log_level)


# ---- topics ----------------------------------------------------------------------------------------------------
@main.group()
def topics() -> None:
    """Create and inspect the catalog's topics (topics/catalog.yaml)."""


@topics.command("create")
def topics_create() -> None:
    """Create missing topics; report (never change) existing topics whose partitions or configs drifted."""
    settings = _settings()
    _require_broker(settings)
    from app.core.admin import ensure_topics

    report = asyncio.run(ensure_topics(settings, _catalog(settings)))
    _echo_json(report.as_dict())
    if report.drift:
        click.echo(
            f"{len(report.drift)} topic(s) drifted from the catalog: review, then alter by hand", err=True
        )


@topics.command("list")
def topics_list() -> None:
    """List every catalog topic with whether it exists on the broker."""
    settings = _settings()
    _require_broker(settings)
    from app.core.admin import list_topics

    _echo_json(asyncio.run(list_topics(settings, _catalog(settings))))


# ---- check / produce -------------------------------------------------------------------------------------------
def _read_input(file: str) -> bytes:
    return sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()


@main.command()
@click.argument("domain")
@click.argument("file")
@click.option(
    "--type", "event_type", help="Event type (header switchyard.event-type) for domains that need one."
)
@click.option("--now", "now_text", help="ISO-8601 instant used as 'now' by enrichment (reproducible output).")
@click.option("--outputs", is_flag=True, help="Also print the records the worker would produce.")
def check(domain: str, file: str, event_type: str | None, now_text: str | None, outputs: bool) -> None:
    """Decode, validate and enrich one record offline, with the code the worker runs.

    Prints the enriched JSON and exits 0, or prints {"stage","code","message","path"} and exits 1.
    FILE is a path or - for stdin.
    """
    settings = _settings()
    rules = _rules(settings, domain)
    if rules.event_types and event_type and event_type not in rules.event_types:
        raise click.BadParameter(
            f"{event_type!r}; one of: {', '.join(rules.event_types)}", param_hint="--type"
        )
    now = datetime.fromisoformat(now_text.replace("Z", "+00:00")) if now_text else datetime.now().astimezone()
    headers = ((EVENT_TYPE_HEADER, event_type.encode()),) if event_type else ()
    raw = RawRecord(value=_read_input(file), headers=headers, topic=f"{domain}.raw")
    try:
        processed = rules.process(raw, now)
        result: dict[str, Any] = processed.enriched
        if outputs:
            result = {
                "enriched": processed.enriched,
                "outputs": [
                    {
                        "topic": e.topic,
                        "key": e.key,
                        "value": e.value if not isinstance(e.value, bytes) else f"<{len(e.value)} bytes>",
                    }
                    for e in rules.route(processed, now)
                ],
            }
    except RecordError as err:
        _echo_json(err.as_dict())
        sys.exit(1)
    _echo_json(result)


@main.command()
@click.argument("domain")
@click.argument("file")
@click.option("--type", "event_type", help="Event type header for domains that need one.")
@click.option("--lines", is_flag=True, help="FILE holds one JSON document per line (JSON Lines).")
def produce(domain: str, file: str, event_type: str | None, lines: bool) -> None:
    """Publish FILE (as is, bytes untouched) to DOMAIN's raw topic, keyed as the domain keys it."""
    settings = _settings()
    _require_broker(settings)
    rules = _rules(settings, domain)
    data = _read_input(file)
    bodies = [ln for ln in data.splitlines() if ln.strip()] if lines else [data]
    topic = settings.topic(_catalog(settings).raw_topic(domain).name)
    sent = asyncio.run(_produce(settings, topic, rules, bodies, event_type))
    click.echo(f"published {sent} record(s) to {topic}", err=True)


async def _produce(
    settings: Settings, topic: str, rules: DomainRules, bodies: list[bytes], event_type: str | None
) -> int:
    from tqdm import tqdm

    from app.core.kafka import producer

    headers = [(EVENT_TYPE_HEADER, event_type.encode())] if event_type else []
    prod = producer(settings)
    await prod.start()
    try:
        futures = []
        for body in tqdm(bodies, desc="produce", unit="rec", disable=len(bodies) < 100, file=sys.stderr):
            futures.append(await prod.send(topic, body, key=rules.key_of(body, event_type), headers=headers))
        await asyncio.gather(*futures)
    finally:
        await prod.stop()
    return len(bodies)


# ---- dead letters ----------------------------------------------------------------------------------------------
@main.group()
def dlq() -> None:
    """Inspect and replay dead-letter records (every <domain>.deadletter topic)."""


def _dlq_filters(f: Any) -> Any:
    for opt in reversed(
        [
            click.option("--domain", "domains", multiple=True, help="Only these domains (repeatable)."),
            click.option("--code", "codes", multiple=True, help="Only these error codes, e.g. SCHEMA-ENUM."),
            click.option(
                "--stage",
                type=click.Choice(["decode", "validate", "enrich", "sink"]),
                help="Only this stage.",
            ),
            click.option("--since", help="Only records that failed at or after this ISO-8601 instant."),
            click.option("--until", help="Only records that failed before this ISO-8601 instant."),
        ]
    ):
        f = opt(f)
    return f


def _matches(
    rec: Any, codes: tuple[str, ...], stage: str | None, since: str | None, until: str | None
) -> bool:
    from app.core.deadletter import CODE, FAILED_AT, STAGE

    if codes and rec.get(CODE) not in codes:
        return False
    if stage and rec.get(STAGE) != stage:
        return False
    failed = rec.get(FAILED_AT)
    if since and failed < since:
        return False
    return not (until and failed >= until)


def _dlq_topics(settings: Settings, domains: tuple[str, ...]) -> list[str]:
    cat = _catalog(settings)
    names = [
        t.name for t in cat.topics.values() if t.role == "deadletter" and (not domains or t.domain in domains)
    ]
    if not names:
        raise click.BadParameter(f"no dead-letter topics for {', '.join(domains)}", param_hint="--domain")
    return names


async def _read_dlq(settings: Settings, name: str, **kw: Any) -> Any:
    from app.core.deadletter import DeadLetter
    from app.core.kafka import read_to_end

    async for rec in read_to_end(settings, settings.topic(name), **kw):
        yield DeadLetter(name, rec.partition, rec.offset, rec.key, rec.value, tuple(rec.headers or ()))


@dlq.command("list")
@_dlq_filters
@click.option("--limit", default=100, show_default=True, help="Print at most this many records.")
def dlq_list(
    domains: tuple[str, ...],
    codes: tuple[str, ...],
    stage: str | None,
    since: str | None,
    until: str | None,
    limit: int,
) -> None:
    """Print dead-letter records (newest last) as JSON lines: code, stage, path, message, source, replays."""
    settings = _settings()
    _require_broker(settings)

    async def run() -> int:
        shown = 0
        for name in _dlq_topics(settings, domains):
            async for dl in _read_dlq(settings, name):
                if _matches(dl, codes, stage, since, until) and shown < limit:
                    click.echo(json.dumps(dl.summary(), ensure_ascii=False))
                    shown += 1
        return shown

    shown = asyncio.run(run())
    click.echo(f"{shown} dead-letter record(s) shown", err=True)


@dlq.command("replay")
@_dlq_filters
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; send nothing, move no offsets.")
@click.option(
    "--from-beginning", is_flag=True, help="Consider every DLQ record, not only those not yet replayed."
)
def dlq_replay(
    domains: tuple[str, ...],
    codes: tuple[str, ...],
    stage: str | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
    from_beginning: bool,
) -> None:
    """Send matching dead letters back to their source topic (bytes, key, headers as received).

    Each replay adds 1 to header switchyard.replay.count; a record already replayed SWITCHYARD_DLQ_MAX_REPLAYS times
    is refused, so a record that keeps failing cannot loop. A dead letter that left out its value to fit the record
    limit (header switchyard.error.omitted, "omitted" in `dlq list`) is refused too: it has nothing to send, and the
    record sits at the source position `dlq list` shows. Replay remembers (consumer group <app_id>-dlq-replay)
    what it already went through: run it again and only new dead letters are considered.
    """
    settings = _settings()
    _require_broker(settings)
    summary = asyncio.run(_replay(settings, domains, codes, stage, since, until, dry_run, from_beginning))
    _echo_json(summary)


async def _replay(
    settings: Settings,
    domains: tuple[str, ...],
    codes: tuple[str, ...],
    stage: str | None,
    since: str | None,
    until: str | None,
    dry_run: bool,
    from_beginning: bool,
) -> dict[str, int]:
    from tqdm import tqdm

    from app.core.deadletter import SOURCE_TOPIC
    from app.core.kafka import producer

    counts = {
        "considered": 0,
        "replayed": 0,
        "refused_replay_limit": 0,
        "refused_value_omitted": 0,
        "filtered_out": 0,
    }
    prod = producer(settings)
    await prod.start()
    try:
        with tqdm(desc="replay", unit="rec", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
            for name in _dlq_topics(settings, domains):
                group = f"{settings.app_id}-dlq-replay"
                kw = {"group_id": group, "from_committed": not from_beginning, "commit_at_end": not dry_run}
                futures = []
                async for dl in _read_dlq(settings, name, **kw):
                    counts["considered"] += 1
                    bar.update()
                    if not _matches(dl, codes, stage, since, until):
                        counts["filtered_out"] += 1
                        continue
                    if dl.replays >= settings.dlq_max_replays:
                        counts["refused_replay_limit"] += 1
                        continue
                    if dl.omitted:
                        counts["refused_value_omitted"] += 1
                        continue
                    counts["replayed"] += 1
                    if not dry_run:
                        futures.append(
                            await prod.send(
                                dl.get(SOURCE_TOPIC), dl.value, key=dl.key, headers=list(dl.replay_headers())
                            )
                        )
                await asyncio.gather(*futures)
    finally:
        await prod.stop()
    return counts


# ---- demo, reference CRM, later issues ---------------------------------------------------------------------------
@main.command()
@click.option("--once", is_flag=True, help="Publish the samples, print the summary and exit 0 (CI-friendly).")
@click.option(
    "--timeout", default=120.0, show_default=True, help="Seconds to wait for the worker to process."
)
def demo(once: bool, timeout: float) -> None:
    """Embedded broker (unless SWITCHYARD_BROKER is set) + topics + a worker + every domain's seed samples.

    Prints what happened per domain (in, accepted, dead-lettered, outputs) and where to look.
    """
    from app.demo import run_demo

    sys.exit(run_demo(once=once, timeout=timeout))


@main.command("crm-reference")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8089, show_default=True)
@click.option(
    "--db", default=".switchyard/crm-reference.sqlite3", show_default=True, help="SQLite file of CRM state."
)
@click.option("--limit", default=100, show_default=True, help="Calls allowed per window per token.")
@click.option("--window", default=60.0, show_default=True, help="Rate-limit window in seconds.")
@click.option(
    "--limits", default="", help="Several windows at once, e.g. 100/10s,100/60s (replaces --limit/--window)."
)
def crm_reference(host: str, port: int, db: str, limit: int, window: float, limits: str) -> None:
    """Run the reference CRM (HubSpot CRM v3 shaped, SQLite state, real rate limit, fault injection)."""
    from app.sinks.crm.reference import serve

    serve(host=host, port=port, db=db, limit=limit, window=window, limits=limits)


@main.group()
def crm() -> None:
    """The CRM the sink writes to (SWITCHYARD_CRM_BASE_URL, SWITCHYARD_CRM_TOKEN)."""


@crm.command("setup")
def crm_setup() -> None:
    """Create the property group and every custom property the sink writes, through the CRM v3 properties API.

    Idempotent: what exists is left alone. A property that exists with another type, field type or uniqueness is
    reported as drift and the command exits 1 (changing a live portal's property is its owner's decision).
    """
    from app.sinks.crm.setup import setup_portal

    settings = _settings()
    steps = asyncio.run(setup_portal(settings.crm_base_url, settings.crm_token.get_secret_value()))
    for step in steps:
        click.echo(str(step))
    counts = {s: sum(1 for x in steps if x.status == s) for s in ("created", "exists", "drift")}
    click.echo(f"{settings.crm_base_url}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    if counts["drift"]:
        sys.exit(1)


@main.command()
def asyncapi() -> None:
    """Print the AsyncAPI 3.0 document of every catalog topic: servers from SWITCHYARD_BROKER and its security
    settings, addresses with SWITCHYARD_TOPIC_PREFIX."""
    from app.asyncapi import document

    settings = _settings()
    _echo_json(document(_catalog(settings), settings))


@main.command()
@click.option("--quick", is_flag=True, help="Small backlog per scenario (minutes, not tens of minutes).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.option(
    "--only",
    multiple=True,
    metavar="PART",
    help="Run only this part (repeatable): a scenario (a catalog domain's name) or scaling, recovery,"
    " table_memory, crm.",
)
@click.option(
    "--trace-sample",
    type=click.FloatRange(0.0, 1.0),
    help="Workers trace this share of records (0.01 = 1 %) and export it over OTLP to a sink that drops it.",
)
def bench(quick: bool, as_json: bool, only: tuple[str, ...], trace_sample: float | None) -> None:
    """Benchmark: passthrough vs plain vs pipeline per domain, latency, CRM efficiency, recovery."""
    _bench_on_path()
    from bench.harness import parts, run_bench

    known = parts()
    unknown = sorted(set(only) - set(known))
    if unknown:
        raise click.BadParameter(
            f"unknown part(s) {', '.join(unknown)}; known: {', '.join(known)}", param_hint="--only"
        )
    sys.exit(run_bench(quick=quick, as_json=as_json, only=frozenset(only), trace_sample=trace_sample))


def _bench_on_path() -> None:
    """The bench is development support, not part of the wheel: it runs from a checkout. A console script's
    ``sys.path`` starts at its ``bin/``, so the checkout (which holds ``bench/`` beside ``app/``) is put on it,
    and on ``PYTHONPATH`` for the processes the bench starts (``python -m bench.…``)."""
    if importlib.util.find_spec("bench") is not None:
        return
    from app.paths import INSTALLED, ROOT

    if INSTALLED or not (ROOT / "bench" / "harness.py").is_file():
        raise click.UsageError("switchyard bench runs from a source checkout (bench/ is not installed)")
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)


def run() -> None:
    try:
        main(standalone_mode=True)
    except ConfigError as exc:
        click.echo(f"configuration error: {exc}", err=True)
        sys.exit(2)
    except SwitchyardError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
