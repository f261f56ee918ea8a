"""A real ``switchyard worker`` subprocess for integration tests, isolated by app id, topic prefix and data dir."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from app.paths import ROOT
from app.procs import stop_process
from app.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Deployment:
    """One isolated Switchyard deployment on the shared broker: its own topic prefix, app id (consumer group,
    changelogs) and data dir. Workers started from it join the same consumer group."""

    def __init__(self, bootstrap: str, name: str, tmp: Path, **env: str) -> None:
        self.name = name
        self.tmp = tmp
        self.env = {
            "SWITCHYARD_BROKER": bootstrap,
            "SWITCHYARD_APP_ID": f"sy-{name}",
            "SWITCHYARD_TOPIC_PREFIX": f"{name}.",
            "SWITCHYARD_DATA_DIR": str(tmp / "data"),
            "SWITCHYARD_TOPIC_PARTITIONS": "3",
            "SWITCHYARD_LOG_LEVEL": "INFO",
            **env,
        }
        self.workers: list[Worker] = []

    @property
    def settings(self) -> Settings:
        values: dict[str, Any] = {k.removeprefix("SWITCHYARD_").lower(): v for k, v in self.env.items()}
        return Settings(**values)  # strings, as from the environment; pydantic converts them

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def cli(
        self, *args: str, check: bool = True, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "app", *args],
            env=self._environ(),
            capture_output=True,
            check=check,
            input=input,
            timeout=120,
            cwd=ROOT,
        )

    def worker(self, **env: str) -> Worker:
        w = Worker(self, len(self.workers), env)
        self.workers.append(w)
        return w

    def _environ(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), **self.env, **extra}

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()


#: Every worker log of the session, in start order: a failed test's report shows the notable lines of its own
#: (tests/conftest.py), since a fault inside a worker (a rebalance, a fenced producer) shows nowhere else.
WORKER_LOGS: list[Path] = []


def notable_lines(log: Path, limit: int = 40) -> str:
    """The last ``limit`` warnings and errors of ``log`` other than the expected dead letters, then its tail."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    notable = [ln for ln in lines if ("[WARNING]" in ln or "[ERROR]" in ln) and "dead-lettered" not in ln]
    return "\n".join([*notable[-limit:], "-- last lines --", *lines[-10:]])


class Worker:
    def __init__(self, deployment: Deployment, index: int, env: dict[str, str]) -> None:
        self.deployment = deployment
        self.port = free_port()
        self.index = index
        self.env = {"SWITCHYARD_WEB_PORT": str(self.port), "SWITCHYARD_WORKER_ID": f"w{index}", **env}
        self.log = deployment.tmp / f"worker-{index}.log"
        WORKER_LOGS.append(self.log)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 90.0) -> Worker:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker"],
                env=self.deployment._environ(**self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        self.wait_ready(ready_timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}; log:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not ready after {timeout}s; log:\n{self.tail()}")

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return httpx.get(
            f"{self.url}{path}", timeout=10, follow_redirects=kw.pop("follow_redirects", True), **kw
        )

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = self.get("/metrics").text
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        want = set(labels.items())
        return sum(v for (n, ls), v in self.metrics().items() if n == name and want <= ls)


def wait_until(
    predicate: Any,
    timeout: float = 60.0,
    interval: float = 0.3,
    what: str = "condition",
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise with ``what`` after ``timeout``.

    ``explain`` is called once on timeout, so a predicate that can only say False still leaves a message that
    says what was wrong (which keys differed, say) instead of ``last: False``.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    detail = f"; {explain()}" if explain is not None else ""
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last: {last!r}{detail})")


def read_all(settings: Settings, topic: str, isolation_level: str = "read_committed") -> list[Any]:
    """Every record now on ``topic`` (catalog name), in partition/offset order."""
    import asyncio

    from app.core.kafka import read_to_end

    async def go() -> list[Any]:
        return [
            r async for r in read_to_end(settings, settings.topic(topic), isolation_level=isolation_level)
        ]

    return sorted(asyncio.run(go()), key=lambda r: (r.partition, r.offset))


def produce(
    settings: Settings,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None, Sequence[tuple[str, bytes]]]],
) -> None:
    """Publish (key, value, headers) records to catalog topic ``topic`` and wait for every acknowledgement."""
    import asyncio

    from app.core.kafka import producer

    async def go() -> None:
        prod = producer(settings)
        await prod.start()
        try:
            futures = [await prod.send(settings.topic(topic), v, key=k, headers=h) for k, v, h in records]
            await asyncio.gather(*futures)
        finally:
            await prod.stop()

    asyncio.run(go())
