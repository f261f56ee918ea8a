"""A real Jaeger all-in-one for the tracing tests: built from the Go module proxy once, run on loopback ports.

The version is the one ``deploy/jaeger/go.mod`` pins (``go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@...``);
the binary is cached as ``deploy/jaeger/target/jaeger-<version>`` (git-ignored), so a clean clone builds it once
(``make jaeger``, which ``make test`` runs first, or the first test that needs it) and never again.

``python -m tests.jaeger`` builds it; ``python -m tests.jaeger --run`` also runs it on the default ports.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app.paths import ROOT
from app.procs import stop_process
from tests.worker import free_port, wait_until

JAEGER_DIR = ROOT / "deploy" / "jaeger"
CONFIG = JAEGER_DIR / "config.yaml"
MODULE = "github.com/jaegertracing/jaeger"
#: Built UI files to serve (Jaeger's Go module embeds none): only the screenshot needs them, the API works without.
UI_ASSETS_ENV = "SWITCHYARD_JAEGER_UI"


def version() -> str:
    """The Jaeger version ``deploy/jaeger/go.mod`` pins."""
    found = re.search(rf"^\s*{re.escape(MODULE)} (v\S+)", (JAEGER_DIR / "go.mod").read_text(), re.M)
    if found is None:
        raise RuntimeError(f"{JAEGER_DIR / 'go.mod'} does not require {MODULE}")
    return found.group(1)


def binary() -> Path:
    return JAEGER_DIR / "target" / f"jaeger-{version()}"


def ensure_built() -> Path:
    """The cached binary, built first when missing (a few minutes on two cores; the module cache is reused)."""
    path = binary()
    if path.exists():
        return path
    # Go's own tarball installs to /usr/local/go, which a non-login shell's PATH may lack
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise RuntimeError(
            "Jaeger is built with Go (1.24 or newer, the module's toolchain): `go` is not on PATH"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    print(f"building Jaeger {version()} from the Go module proxy into {path}", file=sys.stderr, flush=True)
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), f"{MODULE}/cmd/jaeger"], cwd=JAEGER_DIR, check=True
    )
    partial.rename(path)  # only a complete build is ever cached
    return path


class Jaeger:
    """One Jaeger process: OTLP/HTTP in on ``otlp_endpoint``, the query API (and UI) on ``url``."""

    def __init__(self, log_file: Path, ui_assets: str | None = None) -> None:
        self.otlp_port = free_port()
        self.query_port = free_port()
        self.url = f"http://127.0.0.1:{self.query_port}"
        self.otlp_endpoint = f"http://127.0.0.1:{self.otlp_port}"
        self.log_file = log_file
        env = {
            **os.environ,
            "JAEGER_HOST": "127.0.0.1",
            "JAEGER_OTLP_HTTP_PORT": str(self.otlp_port),
            "JAEGER_QUERY_PORT": str(self.query_port),
            "JAEGER_QUERY_GRPC_PORT": str(free_port()),
            "JAEGER_UI_ASSETS": ui_assets or os.environ.get(UI_ASSETS_ENV, ""),
        }
        self._log = log_file.open("wb")
        self.proc = subprocess.Popen(
            [str(ensure_built()), "--config", str(CONFIG)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(self._up, timeout=60, what="Jaeger's query API")
        except BaseException:
            self.stop()
            raise

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"Jaeger exited {self.proc.returncode}: {self.log_file.read_text()[-2000:]}")
        try:
            return httpx.get(f"{self.url}/api/services", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def trace(self, trace_id: str) -> list[dict[str, Any]]:
        """The spans Jaeger holds of ``trace_id`` (its HTTP API, ``/api/traces/{id}``); [] while it has none.
        Each span's ``process`` is inlined from the trace's process table."""
        r = httpx.get(f"{self.url}/api/traces/{trace_id}", timeout=10)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        spans: list[dict[str, Any]] = []
        for trace in r.json().get("data") or ():
            processes = trace.get("processes", {})
            for span in trace.get("spans", ()):
                spans.append({**span, "process": processes.get(span.get("processID"), {})})
        return spans

    def spans_of(self, service: str, limit: int = 100_000) -> list[dict[str, Any]]:
        """Every span Jaeger holds of ``service`` from the last two hours (``/api/traces?service=``)."""
        now_us = int(time.time() * 1_000_000)
        params: dict[str, str | int] = {
            "service": service,
            "limit": limit,
            "start": now_us - 2 * 3600 * 1_000_000,
            "end": now_us,
        }
        r = httpx.get(f"{self.url}/api/traces", params=params, timeout=120)
        r.raise_for_status()
        return [span for trace in r.json().get("data") or () for span in trace.get("spans", ())]

    def services(self) -> list[str]:
        names: list[str] = httpx.get(f"{self.url}/api/services", timeout=10).json().get("data") or []
        return names

    def stop(self) -> None:
        stop_process(self.proc)
        self._log.close()


def tags(span: dict[str, Any]) -> dict[str, Any]:
    """A Jaeger span's tags as a dict (``otel.status_code``, ``span.kind`` and the attributes)."""
    return {t["key"]: t["value"] for t in span.get("tags", ())}


if __name__ == "__main__":
    built = ensure_built()
    print(built)
    if "--run" in sys.argv:
        j = Jaeger(Path("jaeger.log"))
        print(f"OTLP: {j.otlp_endpoint}  UI/API: {j.url}  (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            j.stop()
