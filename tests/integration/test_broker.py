"""The embedded broker launcher: clean start/stop, restarts that keep data, hard kills, SCRAM, and the helpers."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from app import broker as broker_mod
from app.broker import DEFAULT_KAFKA_VERSION, EmbeddedBroker, ensure_jars, kafka_version, port_is_free
from app.core.errors import BrokerError
from app.paths import ROOT
from tests.conftest import SCRAM_USERS
from tests.kafka_helpers import consume_all, create_topics, produce, wait_for

pytestmark = pytest.mark.integration


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def processes_using(path: Path) -> list[int]:
    """Pids whose command line mentions ``path``: a leaked JVM still names its data dir."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(proc.name))
    return found


# --- settings, no JVM ------------------------------------------------------------------------------------------
def test_the_pom_default_is_the_launcher_default() -> None:
    pom = broker_mod.POM.read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match is not None
    assert match.group(1) == DEFAULT_KAFKA_VERSION


def test_version_comes_from_argument_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(broker_mod.VERSION_ENV, raising=False)
    assert kafka_version() == DEFAULT_KAFKA_VERSION
    monkeypatch.setenv(broker_mod.VERSION_ENV, "3.9.1")
    assert kafka_version() == "3.9.1"
    assert kafka_version("4.2.2") == "4.2.2"


def test_missing_maven_is_a_clear_broker_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(BrokerError, match="`mvn` is not on PATH"):
        ensure_jars("0.0.0-never-fetched")


def test_a_bad_heap_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(BrokerError, match="heap"):
        EmbeddedBroker(data_dir=tmp_path / "kafka", heap="lots")
    assert not (tmp_path / "kafka").exists()


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = broker_mod.free_ports(20)
    assert len(set(ports)) == 20
    assert all(port_is_free(p) for p in ports)


def test_cluster_ids_look_like_kafka_uuids() -> None:
    # 2,000 draws: without the guard about 31 of them would start with "-" (one in 64)
    ids = {broker_mod.new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)


# --- lifecycle ------------------------------------------------------------------------------------------------
async def round_trip(bootstrap: str, topic: str, value: bytes) -> list[bytes | None]:
    await create_topics(bootstrap, [topic], partitions=1)
    await produce(bootstrap, topic, [(b"k", value, [])])
    return [r.value for r in await consume_all(bootstrap, topic)]


async def test_two_brokers_in_a_row_leave_no_process_and_no_port_behind(tmp_path: Path) -> None:
    pids: list[int] = []
    for i in range(2):
        data_dir = tmp_path / f"run{i}"
        broker = EmbeddedBroker(data_dir=data_dir)
        bootstrap = await asyncio.to_thread(broker.start)
        assert broker.pid is not None and process_exists(broker.pid)
        pid, ports = broker.pid, broker.ports
        assert len(ports) == 2 and not any(port_is_free(p) for p in ports)
        assert await round_trip(bootstrap, "lifecycle", b"v%d" % i) == [b"v%d" % i]
        await asyncio.to_thread(broker.close)
        assert broker.pid is None
        assert not process_exists(pid)
        assert all(port_is_free(p) for p in ports)
        assert processes_using(data_dir) == []
        pids.append(pid)
    assert pids[0] != pids[1]


async def test_restart_keeps_address_and_data(tmp_path: Path) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path / "kafka")
    try:
        bootstrap = await asyncio.to_thread(broker.start)
        assert await round_trip(bootstrap, "kept", b"before") == [b"before"]
        old_pid = broker.pid
        assert await asyncio.to_thread(broker.restart) == bootstrap
        assert broker.pid != old_pid
        assert [r.value for r in await consume_all(bootstrap, "kept")] == [b"before"]
    finally:
        await asyncio.to_thread(broker.close)


async def test_after_a_hard_kill_the_broker_restarts_with_committed_data(tmp_path: Path) -> None:
    broker = EmbeddedBroker(data_dir=tmp_path / "kafka")
    try:
        bootstrap = await asyncio.to_thread(broker.start)
        assert await round_trip(bootstrap, "survives", b"acked") == [b"acked"]
        pid = broker.pid
        assert pid is not None
        broker.kill()
        assert broker.pid is None and not process_exists(pid)
        assert await asyncio.to_thread(broker.restart) == bootstrap
        await produce(bootstrap, "survives", [(b"k", b"after", [])])
        assert [r.value for r in await consume_all(bootstrap, "survives")] == [b"acked", b"after"]
    finally:
        await asyncio.to_thread(broker.close)


def test_a_temporary_data_dir_is_removed_on_close() -> None:
    with EmbeddedBroker() as broker:
        data_dir = broker.data_dir
        assert (data_dir / "logs" / "meta.properties").is_file()
    assert not data_dir.exists()


async def test_the_foreground_command_prints_the_bootstrap_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data_dir = tmp_path / "kafka"
    proc = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; reads and waits go through to_thread
        [sys.executable, "-m", "app.broker", "--data-dir", str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        bootstrap = (await asyncio.to_thread(proc.stdout.readline)).decode().strip()
        assert re.fullmatch(r"127\.0\.0\.1:\d+", bootstrap), bootstrap
        assert await round_trip(bootstrap, "cli", b"hello") == [b"hello"]
        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert processes_using(data_dir) == []
    assert port_is_free(int(bootstrap.rsplit(":", 1)[1]))


# --- SASL/SCRAM -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_scram_users_can_produce_and_consume(
    scram_broker: EmbeddedBroker, unique_name: Callable[[str], str], mechanism: str
) -> None:
    topic = unique_name("scram")
    await create_topics(scram_broker.bootstrap, [topic], partitions=1)
    assert scram_broker.sasl_bootstrap is not None
    auth = {
        "bootstrap_servers": scram_broker.sasl_bootstrap,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "switchyard",
        "sasl_plain_password": SCRAM_USERS["switchyard"],
    }
    producer = AIOKafkaProducer(**auth, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"over-sasl")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**auth, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert record.value == b"over-sasl"


async def test_a_wrong_scram_password_is_refused(scram_broker: EmbeddedBroker) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=scram_broker.sasl_bootstrap,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="switchyard",
        sasl_plain_password="not-the-password",
        request_timeout_ms=10000,
    )
    with pytest.raises(KafkaError):
        await producer.start()
    await producer.stop()


# --- the session broker and the helpers -----------------------------------------------------------------------
async def test_consume_all_honours_the_isolation_level(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("iso")
    await create_topics(kafka_bootstrap, [topic], partitions=2)
    await produce(kafka_bootstrap, topic, [(b"a", b"plain", [("h", b"1")])])
    tx = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_name("tx"))
    await tx.start()
    try:
        await tx.begin_transaction()
        await tx.send_and_wait(topic, b"open", key=b"a")
        committed = await consume_all(kafka_bootstrap, topic, isolation_level="read_committed")
        uncommitted = await consume_all(kafka_bootstrap, topic, isolation_level="read_uncommitted")
        await tx.abort_transaction()
    finally:
        await tx.stop()
    assert [(r.value, list(r.headers)) for r in committed] == [(b"plain", [("h", b"1")])]
    assert sorted(r.value for r in uncommitted if r.value) == [b"open", b"plain"]


async def test_consume_all_on_a_missing_topic_says_so(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    with pytest.raises(LookupError, match="does not exist"):
        await consume_all(kafka_bootstrap, unique_name("missing"))


async def test_wait_for_returns_the_value_or_names_what_it_waited_for() -> None:
    calls = []

    async def third_time() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert await wait_for(third_time, timeout=5, interval=0) == 3
    with pytest.raises(TimeoutError, match="the impossible"):
        await wait_for(lambda: False, timeout=0.05, interval=0.01, what="the impossible")


def test_unique_names_differ_per_call_and_are_legal_topic_names(unique_name: Callable[[str], str]) -> None:
    a, b = unique_name("orders"), unique_name("orders")
    assert a != b
    assert all(re.fullmatch(r"[A-Za-z0-9._-]{1,249}", n) for n in (a, b))
    assert a.startswith("orders.")


_loops: set[int] = set()


@pytest.mark.parametrize("attempt", [1, 2])
async def test_every_async_test_runs_on_the_one_session_loop(attempt: int) -> None:
    _loops.add(id(asyncio.get_running_loop()))
    assert len(_loops) == 1
