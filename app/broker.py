"""A real single-node Apache Kafka broker (KRaft, broker and controller in one JVM) without Docker.

Tests, the demo and the benchmarks need the real thing: transactions, consumer-group rebalances and broker
restarts behave in ways no fake reproduces. The broker's jars come from Maven Central through
``deploy/kafka/pom.xml`` (cached under ``deploy/kafka/target/libs-<version>/``); the JVM is sized for a small
machine shared with workers. The Kafka version is one setting: ``SWITCHYARD_KAFKA_VERSION``, else
:data:`DEFAULT_KAFKA_VERSION` (kept equal to the pom's default).

``python -m app.broker`` runs one in the foreground for people; ``--fetch-only`` just caches the jars (CI).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from app.core.errors import BrokerError
from app.paths import ROOT
from app.procs import stop_process

DEFAULT_KAFKA_VERSION = "4.4.0"
VERSION_ENV = "SWITCHYARD_KAFKA_VERSION"
KAFKA_DIR = ROOT / "deploy" / "kafka"
POM = KAFKA_DIR / "pom.xml"
TARGET_DIR = KAFKA_DIR / "target"
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")

# Serial GC and C1-only JIT: on two cores shared with workers, C2 compiler threads and parallel GC threads
# compete with the workers the broker is there to serve. Measured on the 2-core CI box (Kafka 4.4.0, three
# runs each): C1-only cold start 2.1-2.9 s using 5-6 s of CPU, default tiered JIT 3.3-4.9 s using 9-12 s.
JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

_STAMP = ".switchyard-fetched"


def kafka_version(version: str | None = None) -> str:
    """The version to run: the argument, else ``SWITCHYARD_KAFKA_VERSION``, else the default."""
    return version or os.environ.get(VERSION_ENV) or DEFAULT_KAFKA_VERSION


def libs_dir(version: str | None = None) -> Path:
    return TARGET_DIR / f"libs-{kafka_version(version)}"


def _pom_digest() -> str:
    """The pom's identity minus its default version, which is not part of what a ``libs-<version>`` holds."""
    pom = re.sub(r"<kafka.version>[^<]*</kafka.version>", "", POM.read_text())
    return hashlib.sha256(pom.encode()).hexdigest()


def ensure_jars(version: str | None = None) -> Path:
    """The directory holding every jar of Kafka ``version``, fetching them with Maven once.

    The cache is keyed on the pom's content as well as the version: a dependency change in the pom (say, a
    logging binding) must not leave stale jars beside new ones on the classpath. Maven writes into a fresh
    directory that replaces the old one only when complete, so a broker already running from the old jars and
    a concurrent fetch by another process both stay safe.
    """
    v = kafka_version(version)
    libs = libs_dir(v)
    stamp = libs / _STAMP
    digest = _pom_digest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return libs
    for tool in ("mvn", "java"):
        if shutil.which(tool) is None:
            raise BrokerError(
                f"`{tool}` is not on PATH: the embedded Kafka broker needs a JDK (17+) and Maven "
                "(Debian/Ubuntu: apt-get install default-jdk-headless maven)"
            )
    TARGET_DIR.mkdir(parents=True, exist_ok=True)
    with (TARGET_DIR / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == digest:
            return libs
        fresh = TARGET_DIR / f"libs-{v}.partial-{os.getpid()}"
        shutil.rmtree(fresh, ignore_errors=True)
        log = TARGET_DIR / f"mvn-{v}.log"
        with log.open("wb") as out:
            done = subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    f"-Dkafka.version={v}",
                    f"-Dlibs.dir={fresh}",
                    "dependency:copy-dependencies",
                ],
                cwd=KAFKA_DIR,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if done.returncode != 0 or not (fresh / f"kafka_2.13-{v}.jar").is_file():
            shutil.rmtree(fresh, ignore_errors=True)
            raise BrokerError(
                f"fetching Kafka {v} jars with Maven failed (exit {done.returncode}); see {log}:\n"
                + _tail(log)
            )
        (fresh / _STAMP).write_text(digest + "\n")
        if libs.exists():
            stale = TARGET_DIR / f"libs-{v}.stale-{os.getpid()}"
            libs.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        fresh.rename(libs)
    return libs


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports: all held open at once, so the kernel cannot hand one out twice."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def new_cluster_id() -> str:
    """A Kafka Uuid as ``kafka-storage random-uuid`` prints it: url-safe base64 of 16 bytes, unpadded.

    Like Kafka's own ``Uuid.randomUuid``, never one that starts with ``-``: the storage tool's argument parser
    reads ``-t -0gl...`` as a missing id and an unknown option (one id in 64 did, and failed the format).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class BrokerTls:
    """What the embedded broker needs for its TLS listeners: its own certificate and key, and the CA it trusts.

    Plain PEM files, since Kafka 4 reads PEM key and trust stores directly: no keytool, no JKS passwords.
    ``keyfile`` must be an unencrypted PKCS#8 key (``-----BEGIN PRIVATE KEY-----``, what ``openssl req -noenc``
    writes), because a PEM key store takes a key password only for encrypted keys. ``cafile`` verifies client
    certificates; ``client_auth`` makes the SSL listener demand one (mutual TLS), the way a production cluster
    that authenticates clients by certificate does.
    """

    certfile: Path
    keyfile: Path
    cafile: Path
    client_auth: bool = True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class EmbeddedBroker:
    """One KRaft broker+controller JVM on loopback, owned by this process.

    Ports and the cluster id are chosen at the first start and kept, so :meth:`restart` (also after
    :meth:`kill`) brings back the same cluster on the same address with its data: clients reconnect as they
    would to a production broker coming back. Without ``data_dir`` the data lives in a temporary directory
    removed by :meth:`close`.

    ``scram_users`` (name -> password) adds a SASL_PLAINTEXT listener (:attr:`sasl_bootstrap`) accepting
    SCRAM-SHA-256 and SCRAM-SHA-512 for those users. KRaft keeps SCRAM credentials in the cluster metadata, so
    they are written when the storage is formatted: a data dir formatted earlier keeps its first users.

    ``tls`` adds an SSL listener (:attr:`ssl_bootstrap`), and with ``scram_users`` as well a SASL_SSL listener
    (:attr:`sasl_ssl_bootstrap`, SCRAM over TLS, no client certificate needed) so clients' TLS settings can be
    tested against a real broker. The PLAINTEXT listener stays: the broker talks to itself and to the
    readiness probe over it, so a TLS mistake shows up as a refused client, not as a broker that never starts.

    When started from the main thread the JVM gets SIGKILL if this process dies without cleaning up (a killed
    test run must not leave brokers behind). That signal follows the starting *thread*, which is why other
    threads do not get it and rely on :func:`atexit` only.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        version: str | None = None,
        heap: str = "512m",
        log_file: Path | None = None,
        partitions: int = 6,
        scram_users: dict[str, str] | None = None,
        tls: BrokerTls | None = None,
    ) -> None:
        self.version = kafka_version(version)
        self._min_heap = min_heap(heap)
        self._owns_dir = data_dir is None
        self.data_dir = (
            Path(tempfile.mkdtemp(prefix="switchyard-kafka-")) if data_dir is None else Path(data_dir)
        )
        self.log_file = log_file if log_file is not None else self.data_dir / "kafka.log"
        self.heap = heap
        self.partitions = partitions
        self.scram_users = dict(scram_users or {})
        self.tls = tls
        self._proc: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._controller_port: int | None = None
        self._sasl_port: int | None = None
        self._ssl_port: int | None = None
        self._sasl_ssl_port: int | None = None
        self._atexit_registered = False

    # --- addresses -----------------------------------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        if self._port is None:
            raise BrokerError("the broker has not been started yet: no bootstrap address")
        return f"127.0.0.1:{self._port}"

    @property
    def sasl_bootstrap(self) -> str | None:
        """The SASL_PLAINTEXT (SCRAM) listener, when ``scram_users`` were given."""
        return None if self._sasl_port is None else f"127.0.0.1:{self._sasl_port}"

    @property
    def ssl_bootstrap(self) -> str | None:
        """The SSL listener (mutual TLS when ``tls.client_auth``), when ``tls`` was given."""
        return None if self._ssl_port is None else f"127.0.0.1:{self._ssl_port}"

    @property
    def sasl_ssl_bootstrap(self) -> str | None:
        """The SASL_SSL (SCRAM over TLS) listener, when both ``tls`` and ``scram_users`` were given."""
        return None if self._sasl_ssl_port is None else f"127.0.0.1:{self._sasl_ssl_port}"

    @property
    def ports(self) -> tuple[int, ...]:
        every = (self._port, self._controller_port, self._sasl_port, self._ssl_port, self._sasl_ssl_port)
        return tuple(p for p in every if p is not None)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def running(self) -> bool:
        return self.pid is not None

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> str:
        """Start the broker and return its bootstrap address once it answers Kafka requests."""
        if self.running:
            return self.bootstrap
        libs = ensure_jars(self.version)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self._port is None:
            scram, tls = bool(self.scram_users), self.tls is not None
            ports = iter(free_ports(2 + scram + tls + (scram and tls)))
            self._port, self._controller_port = next(ports), next(ports)
            self._sasl_port = next(ports) if scram else None
            self._ssl_port = next(ports) if tls else None
            self._sasl_ssl_port = next(ports) if scram and tls else None
        props = self._write_config()
        self._format(libs, props)
        if not self._atexit_registered:
            atexit.register(self.close)
            self._atexit_registered = True
        with self.log_file.open("ab") as out:
            self._proc = subprocess.Popen(
                [*self._death_signal(), *self._java(libs), "kafka.Kafka", str(props)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            _run_in_thread(self._wait_ready(timeout))
        except BaseException:
            self.kill()
            raise
        return self.bootstrap

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), SIGKILL after ``timeout``. Data and ports are kept."""
        proc = self._proc
        if proc is None:
            return
        stop_process(proc, timeout)
        self._proc = None

    def kill(self) -> None:
        """Hard stop (SIGKILL): what a crashed broker looks like to clients and to its own recovery."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._proc = None

    def restart(self, timeout: float = 60.0) -> str:
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop, and remove the data dir when it is a temporary one this broker made."""
        self.stop()
        if self._atexit_registered:
            atexit.unregister(self.close)
            self._atexit_registered = False
        if self._owns_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_file, lines)

    # --- internals -----------------------------------------------------------------------------------------
    def _java(self, libs: Path) -> list[str]:
        return [
            "java",
            f"-Xms{self._min_heap}",
            f"-Xmx{self.heap}",
            *JVM_FLAGS,
            f"-Dlog4j2.configurationFile={self._write_log_config()}",
            "-cp",
            f"{libs}/*",
        ]

    def _death_signal(self) -> list[str]:
        if threading.current_thread() is threading.main_thread() and shutil.which("setpriv"):
            return ["setpriv", "--pdeathsig", "KILL", "--"]
        return []

    def _cluster_id(self) -> str:
        path = self.data_dir / "cluster.id"
        if not path.is_file():
            path.write_text(new_cluster_id() + "\n")
        return path.read_text().strip()

    def _format(self, libs: Path, props: Path) -> None:
        if (self.data_dir / "logs" / "meta.properties").is_file():
            return
        scram = [
            arg
            for user, password in self.scram_users.items()
            for mechanism in SCRAM_MECHANISMS
            for arg in ("--add-scram", f"{mechanism}=[name={user},password={password}]")
        ]
        with self.log_file.open("ab") as out:
            done = subprocess.run(
                [
                    *self._java(libs),
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    self._cluster_id(),
                    "-c",
                    str(props),
                    *scram,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        if done.returncode != 0:
            raise BrokerError(
                f"formatting KRaft storage failed (exit {done.returncode}); see {self.log_file}:\n"
                + self.log_tail()
            )

    def _write_config(self) -> Path:
        listeners = [f"PLAINTEXT://127.0.0.1:{self._port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        extra: dict[str, str] = {}
        if self.scram_users:
            extra["sasl.enabled.mechanisms"] = ",".join(SCRAM_MECHANISMS)
        for protocol, port in (
            ("SASL_PLAINTEXT", self._sasl_port),
            ("SSL", self._ssl_port),
            ("SASL_SSL", self._sasl_ssl_port),
        ):
            if port is None:
                continue
            listeners.append(f"{protocol}://127.0.0.1:{port}")
            protocols.append(f"{protocol}:{protocol}")
            prefix = f"listener.name.{protocol.lower()}."
            if protocol.startswith("SASL"):
                for mechanism in SCRAM_MECHANISMS:
                    extra[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = (
                        "org.apache.kafka.common.security.scram.ScramLoginModule required;"
                    )
            if protocol.endswith("SSL"):
                extra.update({prefix + k: v for k, v in self._tls_config(protocol).items()})
        config = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": ",".join([*listeners, f"CONTROLLER://127.0.0.1:{self._controller_port}"]),
            "advertised.listeners": ",".join(listeners),
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": ",".join(protocols),
            "controller.quorum.voters": f"1@127.0.0.1:{self._controller_port}",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": str(self.partitions),
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "12",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # A killed broker's registration outlives it by the session timeout; the restarted one cannot
            # register (DUPLICATE_BROKER_REGISTRATION) until the controller fences the old one. (default 9 s).
            "broker.heartbeat.interval.ms": "1000",
            "broker.session.timeout.ms": "4000",
            "log.segment.bytes": str(16 * 1024 * 1024),
            "num.network.threads": "2",
            "num.io.threads": "4",
            "background.threads": "2",
            "log.cleaner.threads": "1",
            "num.recovery.threads.per.data.dir": "1",
            **extra,
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in config.items()))
        return path

    def _tls_config(self, protocol: str) -> dict[str, str]:
        """Listener-scoped TLS settings: PEM stores, and client certificates required on the SSL listener only
        (on SASL_SSL, SCRAM authenticates the client)."""
        assert self.tls is not None
        # A PEM key store is one file with the key followed by the certificate chain; it is rewritten at every
        # start so a renewed certificate is picked up by restart(), and readable by this user only.
        keystore = self.data_dir / "tls-keystore.pem"
        keystore.touch(mode=0o600)
        keystore.chmod(0o600)
        keystore.write_text(self.tls.keyfile.read_text().rstrip("\n") + "\n" + self.tls.certfile.read_text())
        config = {
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.tls.cafile),
        }
        if protocol == "SSL" and self.tls.client_auth:
            config["ssl.client.auth"] = "required"
        return config

    def _write_log_config(self) -> Path:
        path = self.data_dir / "log4j2.properties"
        path.write_text(
            "status = warn\n"
            "appender.file.type = File\n"
            "appender.file.name = file\n"
            f"appender.file.fileName = {self.log_file}\n"
            "appender.file.append = true\n"
            "appender.file.layout.type = PatternLayout\n"
            "appender.file.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = INFO\n"
            "rootLogger.appenderRef.file.ref = file\n"
            "logger.request.name = kafka.request.logger\n"
            "logger.request.level = WARN\n"
            "logger.statechange.name = state.change.logger\n"
            "logger.statechange.level = WARN\n"
        )
        return path

    async def _wait_ready(self, timeout: float) -> None:
        """Ready means a registered, unfenced broker in the metadata, not an open port: a KRaft broker
        accepts connections before it can serve them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise BrokerError(
                    f"Kafka exited during start-up (exit {code}); see {self.log_file}:\n{self.log_tail()}"
                )
            if await _answers_metadata(self.bootstrap):
                return
            await asyncio.sleep(0.1)
        raise BrokerError(
            f"Kafka did not become ready within {timeout:.0f}s; see {self.log_file}:\n{self.log_tail()}"
        )


def min_heap(heap: str) -> str:
    """``-Xms``: 256m committed up front avoids the early resize pauses, capped by the maximum heap."""
    units = {"k": 1, "m": 1024, "g": 1024 * 1024}
    size, unit = heap[:-1], heap[-1:].lower()
    if unit not in units or not size.isdigit():
        raise BrokerError(f"heap must look like 512m or 1g, got {heap!r}")
    return "256m" if int(size) * units[unit] >= 256 * 1024 else heap


async def _answers_metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    host, port = bootstrap.rsplit(":", 1)
    try:
        _, writer = await asyncio.open_connection(host, int(port))
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        with contextlib.suppress(Exception):
            await admin.close()


def _run_in_thread(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on a private loop: ``start()`` is synchronous but callers may be inside a running loop."""
    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target, name="kafka-ready-probe", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.broker",
        description=(
            "Run a single-node Apache Kafka broker (KRaft) in the foreground on loopback and print "
            "its bootstrap address. Ctrl-C stops it cleanly. Jars come from Maven Central via "
            "deploy/kafka/pom.xml and are cached under deploy/kafka/target/."
        ),
    )
    parser.add_argument(
        "--version", default=None, help=f"Kafka version (default: ${VERSION_ENV} or {DEFAULT_KAFKA_VERSION})"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep data here (default: a temporary dir, removed on exit)",
    )
    parser.add_argument("--heap", default="512m", help="JVM maximum heap (default: 512m)")
    parser.add_argument(
        "--partitions", type=int, default=6, help="num.partitions for new topics (default: 6)"
    )
    parser.add_argument(
        "--fetch-only", action="store_true", help="only fetch and cache the jars, then exit (CI)"
    )
    args = parser.parse_args(argv)
    try:
        if args.fetch_only:
            print(ensure_jars(args.version), flush=True)
            return 0
        broker = EmbeddedBroker(
            data_dir=args.data_dir, version=args.version, heap=args.heap, partitions=args.partitions
        )
        started = time.monotonic()
        bootstrap = broker.start()
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(bootstrap, flush=True)
    print(
        f"Kafka {broker.version} ready in {time.monotonic() - started:.1f}s;"
        f" data {broker.data_dir}, log {broker.log_file}."
        " Ctrl-C to stop.",
        file=sys.stderr,
        flush=True,
    )
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    while not stopping.is_set() and broker.running:
        stopping.wait(1.0)
    if not stopping.is_set():
        print(f"error: Kafka exited on its own; see {broker.log_file}:\n{broker.log_tail()}", file=sys.stderr)
    broker.close()
    return 0 if stopping.is_set() else 1


if __name__ == "__main__":
    sys.exit(main())
