"""Smoke test of the Docker stack users get: the images built, docker-compose.yml started, every domain's samples
through it, and each piece checked through its own interface.

The images are built from this checkout (tests/containers/images.py, cached by content); compose runs
docker-compose.yml with docker-compose.ci.yml on top (host networking, free loopback ports). What is expected on
the topics comes from the domains' pure rules applied offline to the same samples: every (topic, key) their
``route`` emits must show up, and each domain's deliberately broken record must be dead-lettered. Prometheus is
asked through its HTTP API whether it scraped both workers and loaded every alert rule; the reference CRM is
asked for its contacts. Skipped, with the reason, where no Docker engine answers (failed instead in CI).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from app.core.catalog import Catalog, load_catalog
from app.core.domain import load_domain
from app.core.errors import RecordError
from app.core.kafka import read_to_end
from app.core.records import RawRecord
from app.demo import BROKEN_JSON, publish
from app.settings import Settings
from tests.containers.broker import docker_or_skip, skip_or_fail
from tests.containers.images import ImageError, MissingTool, all_images
from tests.containers.stack import PROMETHEUS_DIR, Stack, compose_command

pytestmark = pytest.mark.integration

T = TypeVar("T")
READY_TIMEOUT_S = 240.0
OUTPUT_TIMEOUT_S = 180.0
PROMETHEUS_TIMEOUT_S = 120.0


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 1.0) -> T:
    """``probe()`` once it returns something other than ``None`` (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            found = probe()
        except (httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            last, found = exc, None
        if found is not None:
            return found
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f}s (last error: {last!r})")


def ready_probe(*urls: str) -> Callable[[], bool | None]:
    """Ready when every one of ``urls`` answers ready at once: worker-2 starts after worker-1 is ready, and its
    join sends worker-1 through a rebalance (and a table recovery, not ready) again."""

    def probe() -> bool | None:
        answers = [httpx.get(f"{url}/health/ready", timeout=3).status_code for url in urls]
        return True if all(code == 200 for code in answers) else None

    return probe


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    docker_or_skip()
    compose = compose_command()
    if compose is None:
        skip_or_fail(
            "neither `docker compose` nor `docker-compose` is installed (apt-get install docker-compose)"
        )
    try:
        images = all_images()
    except MissingTool as exc:
        skip_or_fail(str(exc))
    except ImageError as exc:
        pytest.fail(f"building the images failed: {exc}")
    s = Stack(compose, images, tmp_path_factory.mktemp("stack"))
    started = time.monotonic()
    try:
        s.up()
        wait_for("both workers ready", ready_probe(*s.worker_urls), READY_TIMEOUT_S)
        print(f"stack up and both workers ready in {time.monotonic() - started:.0f}s")
        yield s
    except BaseException:
        print(s.logs(80))
        raise
    finally:
        s.down()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def settings(stack: Stack) -> Settings:
    return Settings(broker=stack.bootstrap, topic_prefix="", app_id="switchyard-smoke")


@pytest.fixture(scope="module")
def published(stack: Stack, settings: Settings, catalog: Catalog) -> dict[str, int]:
    """Every domain's seed samples plus one broken record each, published to the stack's raw topics."""
    return asyncio.run(publish(settings, catalog, list(catalog.domains)))


def expected_outputs(catalog: Catalog) -> tuple[dict[str, set[bytes]], dict[str, int]]:
    """(topic -> keys the rules route the samples to, domain -> records expected on its dead-letter topic)."""
    now = datetime.now(UTC)
    keys: dict[str, set[bytes]] = {}
    dead: dict[str, int] = {}
    for domain in catalog.domains:
        rules = load_domain(catalog, domain).rules
        dead[domain] = 1  # the broken record
        for sample in rules.samples():
            raw = RawRecord(value=sample.value, headers=sample.headers, topic=catalog.raw_topic(domain).name)
            try:
                processed = rules.process(raw, now)
            except RecordError:
                dead[domain] += 1
                continue
            for emit in rules.route(processed, now):
                key = emit.key.encode() if isinstance(emit.key, str) else emit.key
                keys.setdefault(emit.topic, set()).add(key or b"")
    return keys, dead


async def read_topic(settings: Settings, topic: str) -> list[Any]:
    return [r async for r in read_to_end(settings, settings.topic(topic))]


def test_both_workers_are_ready(stack: Stack) -> None:
    for url in stack.worker_urls:
        response = httpx.get(f"{url}/health/ready", timeout=5)
        assert response.status_code == 200, (url, response.text)


def test_the_images_own_healthcheck_passes_on_a_running_worker(stack: Stack) -> None:
    # Compose overrides it with /health/ready; a plain `docker run` or another orchestrator gets this one.
    inspected = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            "{{json .Config.Healthcheck.Test}}",
            stack.images["app"].tag,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    test = json.loads(inspected.stdout)
    assert test[0] == "CMD" and "/health/live" in " ".join(test), test
    probe = subprocess.run(
        ["docker", "exec", stack.container("worker-1"), *test[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr


def test_every_domains_samples_come_out_on_the_topics_the_rules_say(
    stack: Stack, settings: Settings, catalog: Catalog, published: dict[str, int]
) -> None:
    assert set(published) == set(catalog.domains)
    keys, _ = expected_outputs(catalog)
    assert keys, "the rules route the samples nowhere: nothing to check"

    def missing() -> dict[str, set[bytes]] | None:
        gaps = {}
        for topic, wanted in keys.items():
            seen = {r.key or b"" for r in asyncio.run(read_topic(settings, topic))}
            if wanted - seen:
                gaps[topic] = wanted - seen
        return gaps or None

    deadline = time.monotonic() + OUTPUT_TIMEOUT_S
    gaps = missing()
    while gaps and time.monotonic() < deadline:
        time.sleep(2)
        gaps = missing()
    assert not gaps, (
        f"records the rules route but the stack did not produce: {gaps}\n"
        f"(whole logs in {stack.log_file} after teardown)\n{stack.logs()}"
    )
    print("outputs: " + ", ".join(f"{t} {len(k)} key(s)" for t, k in sorted(keys.items())))


def test_the_broken_record_of_every_domain_is_dead_lettered(
    stack: Stack, settings: Settings, catalog: Catalog, published: dict[str, int]
) -> None:
    _, dead = expected_outputs(catalog)

    def short() -> dict[str, int] | None:
        found = {}
        for domain, n in dead.items():
            records = asyncio.run(read_topic(settings, catalog.deadletter_topic(domain).name))
            if len(records) < n or not any(r.value == BROKEN_JSON for r in records):
                found[domain] = len(records)
        return found or None

    deadline = time.monotonic() + OUTPUT_TIMEOUT_S
    gaps = short()
    while gaps and time.monotonic() < deadline:
        time.sleep(2)
        gaps = short()
    assert not gaps, f"dead letters expected {dead}, short: {gaps}\n{stack.logs()}"


def test_the_reference_crm_holds_the_contacts(stack: Stack, published: dict[str, int]) -> None:
    def contacts() -> list[Any] | None:
        state = httpx.get(f"{stack.crm_url}/__admin/state", timeout=5).json()
        found: list[Any] = state.get("contacts", [])
        return found or None

    found = wait_for("contacts in the reference CRM", contacts, OUTPUT_TIMEOUT_S, interval=2)
    print(f"CRM: {len(found)} contact(s)")


def prometheus(stack: Stack, path: str, **params: str) -> Any:
    response = httpx.get(f"{stack.prometheus_url}{path}", params=params, timeout=5)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def test_prometheus_scraped_both_workers(stack: Stack, published: dict[str, int]) -> None:
    workers = {f"127.0.0.1:{p}" for p in (stack.worker_1_port, stack.worker_2_port)}

    def switchyard_series_by_instance() -> set[str] | None:
        # Up, and Switchyard's own series stored from each: a scrape that reached the worker's /metrics.
        up = prometheus(stack, "/api/v1/query", query='up{job="switchyard"} == 1')
        ours = prometheus(
            stack,
            "/api/v1/query",
            query='count by (instance) ({job="switchyard", __name__=~"switchyard_.+"})',
        )
        both = {r["metric"]["instance"] for r in up["result"]} & {
            r["metric"]["instance"] for r in ours["result"]
        }
        return both if both == workers else None

    assert wait_for("Prometheus scraping both workers", switchyard_series_by_instance, PROMETHEUS_TIMEOUT_S)


def test_prometheus_loaded_every_alert_rule(stack: Stack) -> None:
    wanted = {
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert wanted
    data = prometheus(stack, "/api/v1/rules", type="alert")
    loaded = {rule["name"] for group in data["groups"] for rule in group["rules"]}
    assert loaded == wanted


def test_down_leaves_nothing_running(stack: Stack) -> None:
    stack.down()
    assert stack.leftovers() == []
