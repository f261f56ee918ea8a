"""docker-compose.yml started for real, with docker-compose.ci.yml on top (host networking, local images).

One :class:`Stack` is one compose project with its own name, free loopback ports and volumes, so it collides
with nothing else on the machine (another engineer's stack, a user's ``docker compose up``). The Prometheus it
runs gets the project's ``deploy/prometheus/prometheus.yml`` with only the scrape targets moved to the
workers' ports, and ``alerts.yml`` as is.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import yaml

from app.broker import free_ports
from app.paths import ROOT
from tests.containers.images import Image

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
COMPOSE_FILES = (ROOT / "docker-compose.yml", ROOT / "docker-compose.ci.yml")


def compose_command() -> list[str] | None:
    """Compose v2 (the ``docker compose`` plugin) where installed, else v1 (``docker-compose``, what Debian
    bookworm ships), else ``None``."""
    if shutil.which("docker"):
        done = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if done.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


class Stack:
    def __init__(self, compose: list[str], images: dict[str, Image], tmp: Path) -> None:
        self.project = f"switchyard-smoke-{uuid.uuid4().hex[:8]}"
        self.compose_cmd = compose
        self.images = images
        (
            self.kafka_port,
            self.controller_port,
            self.worker_1_port,
            self.worker_2_port,
            self.crm_port,
            self.prometheus_port,
        ) = free_ports(6)
        self.prometheus_dir = tmp / "prometheus"
        self.log_file = tmp / "stack.log"
        self._write_prometheus_config()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")},
            "COMPOSE_PROJECT_NAME": self.project,
            "SY_CI_APP_IMAGE": images["app"].tag,
            "SY_CI_KAFKA_IMAGE": images["kafka"].tag,
            "SY_CI_PROMETHEUS_IMAGE": images["prometheus"].tag,
            "SY_CI_KAFKA_PORT": str(self.kafka_port),
            "SY_CI_CONTROLLER_PORT": str(self.controller_port),
            "SY_CI_WORKER_1_PORT": str(self.worker_1_port),
            "SY_CI_WORKER_2_PORT": str(self.worker_2_port),
            "SY_CI_CRM_PORT": str(self.crm_port),
            "SY_CI_PROMETHEUS_PORT": str(self.prometheus_port),
            "SY_CI_PROMETHEUS_DIR": str(self.prometheus_dir),
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def worker_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in (self.worker_1_port, self.worker_2_port)]

    @property
    def crm_url(self) -> str:
        return f"http://127.0.0.1:{self.crm_port}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    def _write_prometheus_config(self) -> None:
        config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "switchyard"]
        job["static_configs"] = [
            {"targets": [f"127.0.0.1:{self.worker_1_port}", f"127.0.0.1:{self.worker_2_port}"]}
        ]
        self.prometheus_dir.mkdir(parents=True)
        (self.prometheus_dir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        for rules in config["rule_files"]:
            shutil.copy(PROMETHEUS_DIR / rules, self.prometheus_dir / rules)
        # Prometheus runs as its own user in the container; a pytest tmp dir is root's, mode 0700.
        self.prometheus_dir.chmod(0o755)
        for f in self.prometheus_dir.iterdir():
            f.chmod(0o644)

    def compose(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        files = [arg for f in COMPOSE_FILES for arg in ("-f", str(f))]
        done = subprocess.run(
            [*self.compose_cmd, *files, "--project-directory", str(ROOT), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"compose {' '.join(args)} failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}\n"
                + self.logs()
            )
        return done

    def up(self) -> None:
        self.compose("up", "-d", "--no-build")

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "60")

    def container(self, service: str) -> str:
        """The id of ``service``'s (one) running container."""
        (found,) = self.compose("ps", "-q", service).stdout.split()
        return found

    def logs(self, tail: int = 40) -> str:
        done = subprocess.run(
            [
                *self.compose_cmd,
                *[arg for f in COMPOSE_FILES for arg in ("-f", str(f))],
                "--project-directory",
                str(ROOT),
                "logs",
                "--no-color",
                *(["--tail", str(tail)] if tail is not None else []),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout + done.stderr

    def leftovers(self) -> list[str]:
        """Containers, volumes and networks Docker still holds for this project (its compose label)."""
        label = f"label=com.docker.compose.project={self.project}"
        found: list[str] = []
        for kind, args in (
            ("container", ["ps", "-a", "--filter", label, "--format", "{{.Names}}"]),
            ("volume", ["volume", "ls", "--filter", label, "--format", "{{.Name}}"]),
            ("network", ["network", "ls", "--filter", label, "--format", "{{.Name}}"]),
        ):
            out = subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
            found.extend(f"{kind} {name}" for name in out.split())
        return found
