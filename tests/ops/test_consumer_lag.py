"""Consumer lag for every consumer group the worker runs, as a real Prometheus scrapes it, equal to Kafka's own figure.

A worker runs three kinds of consumer: Faust's (the at-least-once domains and the folds), the exactly-once stage's
(``pismo.raw``), and the CRM sink's (``crm.commands``). The lag alert and the dashboards read
``switchyard_consumer_lag_records``; a group missing from it is a backlog nobody is paged for. Here the CRM is
down, so the sink holds its commands while the other groups drain: Prometheus must have a lag series for each
consumed topic, and each must equal the LAG that Kafka's ConsumerGroupCommand reports for that group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from app.core.kafka import partition_count
from app.core.records import load_samples
from app.domains.pismo.rules import RULES as PISMO
from app.domains.vome.rules import RULES as VOME
from tests.kafka_tools import group_lag
from tests.prometheus import prometheus
from tests.worker import Deployment, free_port, produce, read_all, wait_until

pytestmark = pytest.mark.integration


@pytest.fixture
def deployment(kafka_bootstrap: str, tmp_path: Path, unique_name: Any) -> Iterator[Deployment]:
    d = Deployment(
        kafka_bootstrap,
        unique_name("lag").replace(".", "-"),
        tmp_path,
        SWITCHYARD_DOMAINS="pismo,vome,crm",
        SWITCHYARD_CRM_BASE_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens: the CRM is down
    )
    d.cli("topics", "create")
    try:
        yield d
    finally:
        d.stop_all()


async def commit_start(d: Deployment, group: str, topic: str) -> None:
    """Give ``group`` a committed offset (0) on every partition of ``topic``, so Kafka's tool reports its lag."""
    s = d.settings
    n = await partition_count(s, topic)
    consumer = AIOKafkaConsumer(**s.kafka_client_options(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(n)]
        consumer.assign(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
    finally:
        await consumer.stop()


def test_every_consumed_topic_has_a_lag_series_that_agrees_with_kafka(
    deployment: Deployment, tmp_path: Path
) -> None:
    d = deployment
    s = d.settings
    crm_group = f"{s.app_id}-crm-sink"
    asyncio.run(commit_start(d, crm_group, d.topic("crm.commands")))
    worker = d.worker().start()
    produce(
        s,
        "pismo.raw",
        [(PISMO.key_of(x.value, None), x.value, list(x.headers)) for x in load_samples("pismo")],
    )
    produce(
        s,
        "vome.raw",
        [(VOME.key_of(x.value, x.event_type), x.value, list(x.headers)) for x in load_samples("vome")],
    )
    wait_until(lambda: read_all(s, "crm.commands"), what="CRM commands from the Vome samples")
    groups = {
        s.app_id: d.topic("vome.raw"),  # Faust's consumer group is the app id
        f"{s.app_id}-pismo-eos": d.topic("pismo.raw"),
        crm_group: d.topic("crm.commands"),
    }

    def kafka_lag() -> dict[tuple[str, int], int]:
        found: dict[tuple[str, int], int] = {}
        for group, topic in groups.items():
            found.update({tp: lag for tp, lag in group_lag(s.broker, group).items() if tp[0] == topic})
        return found

    with prometheus(tmp_path, [f"127.0.0.1:{worker.port}"]) as prom:

        def scraped() -> dict[tuple[str, int], int]:
            series = prom.query("switchyard_consumer_lag_records")
            return {
                (x["metric"]["topic"], int(x["metric"]["partition"])): int(float(x["value"][1]))
                for x in series
                if x["metric"]["topic"] in groups.values()
            }

        last: list[Any] = []

        def crm_lag(lags: dict[tuple[str, int], int]) -> int:
            return sum(lag for (topic, _), lag in lags.items() if topic == d.topic("crm.commands"))

        def agree() -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]] | None:
            expected, seen = kafka_lag(), scraped()
            last[:] = [expected, seen]
            covered = {topic for topic, _ in seen} == set(groups.values())
            equal = covered and expected and expected.items() <= seen.items()
            # Settled: the Vome fold has written every command it will (the sink holds all of them).
            settled = crm_lag(expected) == len(read_all(s, "crm.commands"))
            return (expected, seen) if equal and settled else None

        def agreed() -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]]:
            try:
                found: tuple[dict[tuple[str, int], int], dict[tuple[str, int], int]] = wait_until(
                    agree, timeout=180, interval=2, what="Prometheus lag equal to Kafka's"
                )
            except TimeoutError as exc:
                raise AssertionError(f"Kafka's lag {last[0]} vs Prometheus's {last[1]}") from exc
            return found

        agreed()
        # More commands while the sink holds the first ones: its lag must grow with the topic, though it
        # fetches nothing new (a lag read from the last fetch would stay where it was).
        held = read_all(s, "crm.commands")
        produce(s, "crm.commands", [(r.key, r.value, list(r.headers)) for r in held])
        expected, seen = agreed()
    # The down CRM holds every command: the sink's lag is the whole topic, and the queue depth says the same.
    commands = read_all(s, "crm.commands")
    assert crm_lag(expected) == len(commands) == 2 * len(held) > 0
    assert worker.metric("switchyard_crm_queue_depth") == len(commands)
    # The drained groups report zero, per partition, on both sides.
    assert all(lag == 0 for (topic, _), lag in seen.items() if topic != d.topic("crm.commands"))
