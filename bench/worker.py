"""A real ``python -m app worker`` subprocess, isolated by app id, topic prefix and data dir.

Mirrors ``tests/worker.py`` without depending on the test tree: the benchmark must run where pytest does not.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app.paths import ROOT
from app.procs import stop_process
from app.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Deployment:
    """Every name of one deployment starts with ``name`` (app id, topic prefix, Faust's internal topics), so
    deleting topics by that prefix removes all of it."""

    def __init__(self, bootstrap: str, name: str, tmp: Path, **env: str) -> None:
        self.name = name
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.env = {
            "SWITCHYARD_BROKER": bootstrap,
            "SWITCHYARD_APP_ID": name,
            "SWITCHYARD_TOPIC_PREFIX": f"{name}.",
            "SWITCHYARD_DATA_DIR": str(tmp / "data"),
            "SWITCHYARD_TOPIC_PARTITIONS": "6",
            "SWITCHYARD_LOG_LEVEL": "WARNING",
            "SWITCHYARD_CRM_ENABLED": "false",
            "SWITCHYARD_STANDBY_REPLICAS": "0",
            **env,
        }
        self.workers: list[Worker] = []

    @property
    def settings(self) -> Settings:
        fields: dict[str, Any] = {k.removeprefix("SWITCHYARD_").lower(): v for k, v in self.env.items()}
        return Settings(**fields)

    def worker(self, *args: str, **env: str) -> Worker:
        w = Worker(self, len(self.workers), args, env)
        self.workers.append(w)
        return w

    def environ(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(ROOT), **self.env, **extra}

    def stop_all(self) -> None:
        for w in self.workers:
            w.stop()


class Worker:
    def __init__(
        self, deployment: Deployment, index: int, args: tuple[str, ...], env: dict[str, str]
    ) -> None:
        self.deployment = deployment
        self.port = free_port()
        self.args = args
        self.env = {"SWITCHYARD_WEB_PORT": str(self.port), "SWITCHYARD_WORKER_ID": f"w{index}", **env}
        self.log = deployment.tmp / f"worker-{index}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None, "worker not started"
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        self.started_at = time.time()
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "app", "worker", *self.args],
                env=self.deployment.environ(**self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=ROOT,
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = None if self.proc is None else self.proc.returncode
            raise RuntimeError(f"worker exited with {code}; log:\n{self.tail()}")

    def ready(self) -> bool:
        self.check_alive()
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Seconds from process start to ``/health/ready`` (assigned, not rebalancing, tables recovered)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.ready():
                return time.time() - self.started_at
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout}s; log:\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
