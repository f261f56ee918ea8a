"""docker-compose.yml and the Dockerfiles, held to the code they run, statically.

tests/containers/ builds and starts them where a Docker engine answers; these checks run everywhere and name
the mistake: every ``SWITCHYARD_*`` variable must be a setting (a typo would be ignored silently by
pydantic-settings), every worker's settings must validate, the healthchecks must ask the port and path the
worker serves, Prometheus must scrape exactly the workers, and the CI override must put every service on the
host's network.
"""

from __future__ import annotations

import os
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.broker import DEFAULT_KAFKA_VERSION
from app.paths import ROOT
from app.settings import Settings
from tests.containers.broker import skip_or_fail
from tests.containers.stack import compose_command
from tests.ops.settings_env import HEALTH_LIVE, HEALTH_READY, served_paths, settings_env_names

_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}")


def interpolate(value: Any) -> str:
    """A compose value as compose would pass it with nothing set in the environment (defaults applied)."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


@pytest.fixture(scope="module")
def published() -> dict[str, dict[str, Any]]:
    """docker-compose.override.yml: the ports people get (compose reads it by default; CI leaves it out)."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.override.yml").read_text())
    return {name: s for name, s in doc["services"].items()}


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: interpolate(v) for k, v in raw.items()}


WORKER_ENTRYPOINT = ["sh", "-c", "switchyard crm setup && exec switchyard worker"]


def workers(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The worker services: they prepare the CRM (``crm setup``, idempotent) and then run the worker."""
    return {name: s for name, s in services.items() if s.get("entrypoint") == WORKER_ENTRYPOINT}


def container_ports(service: dict[str, Any]) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}


def healthcheck_url(service: dict[str, Any]) -> str:
    test = " ".join(service["healthcheck"]["test"])
    found = re.search(r"https?://[^'\" ]+", test)
    assert found, test
    return found.group(0)


def test_the_stack_has_every_piece(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "crm", "prometheus", "grafana"} <= set(services)
    assert len(workers(services)) == 2
    assert services["crm"]["command"][0] == "crm-reference"
    assert all("healthcheck" in s for s in services.values())
    assert services["grafana"]["profiles"] == ["grafana"]  # its image cannot be had offline (README)


def test_images_are_pinned_and_kafka_is_the_version_the_tests_run(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    assert kafka["build"]["context"] == "deploy/kafka"
    assert kafka["build"]["args"]["KAFKA_VERSION"] == DEFAULT_KAFKA_VERSION
    assert kafka["image"] == f"switchyard-kafka:{DEFAULT_KAFKA_VERSION}"
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{DEFAULT_KAFKA_VERSION}</kafka.version>" in pom
    assert (
        f"ARG KAFKA_VERSION={DEFAULT_KAFKA_VERSION}" in (ROOT / "deploy" / "kafka" / "Dockerfile").read_text()
    )
    for name, service in services.items():
        image = service.get("image", "")
        assert ":" in image and not image.endswith(":latest"), name
    for name in [*workers(services), "crm"]:
        assert services[name]["build"] == "."
        assert services[name]["image"] == "switchyard:local"


def test_every_switchyard_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    known = settings_env_names()
    used = {k for s in services.values() for k in env(s) if k.startswith("SWITCHYARD_")}
    assert used, "no SWITCHYARD_* variables found"
    assert used - known == set()


def test_the_dockerfile_defaults_are_settings_too() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    used = set(re.findall(r"\b(SWITCHYARD_[A-Z0-9_]+)=", dockerfile))
    assert used and used - settings_env_names() == set()


def test_each_workers_settings_validate(
    services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, service in workers(services).items():
        with monkeypatch.context() as m:
            for key in [k for k in os.environ if k.startswith("SWITCHYARD_")]:
                m.delenv(key)
            for key, value in env(service).items():
                m.setenv(key, value)
            settings = Settings()
        assert settings.broker == "kafka:9092", name
        assert settings.worker_id == name and settings.web_host == name
        assert settings.crm_base_url == "http://crm:8089"


def test_workers_have_their_own_id_and_data_volume(services: dict[str, dict[str, Any]]) -> None:
    ws = workers(services)
    assert len({env(s)["SWITCHYARD_WORKER_ID"] for s in ws.values()}) == len(ws)
    volumes = {}
    for name, service in ws.items():
        data_dir = env(service)["SWITCHYARD_DATA_DIR"]
        (mount,) = [v for v in service["volumes"] if v.split(":")[1] == data_dir]
        volumes[name] = mount.split(":")[0]
    assert len(set(volumes.values())) == len(ws)
    assert len({env(s)["SWITCHYARD_APP_ID"] for s in ws.values()}) == 1  # one consumer group


def test_healthchecks_ask_each_workers_ready_endpoint_on_its_web_port(
    services: dict[str, dict[str, Any]], published: dict[str, dict[str, Any]]
) -> None:
    assert HEALTH_READY in served_paths()
    for name, service in workers(services).items():
        e = env(service)
        url = urlsplit(healthcheck_url(service))
        assert url.path == HEALTH_READY, name
        assert (url.hostname, url.port) == (e["SWITCHYARD_WEB_HOST"], int(e["SWITCHYARD_WEB_PORT"])), name
        assert container_ports(published[name]) == {int(e["SWITCHYARD_WEB_PORT"])}, name


def test_ports_are_published_only_by_the_override(
    services: dict[str, dict[str, Any]], published: dict[str, dict[str, Any]]
) -> None:
    # docker-compose.ci.yml runs everything on the host's network, where a published port is an error.
    assert [name for name, s in services.items() if "ports" in s] == []
    assert set(published) <= set(services)
    for name, service in published.items():
        assert all(str(p).startswith("127.0.0.1:") for p in service["ports"]), name


def test_the_ci_override_puts_every_started_service_on_the_host_network(
    services: dict[str, dict[str, Any]],
) -> None:
    ci = yaml.safe_load((ROOT / "docker-compose.ci.yml").read_text())
    started = {name for name, s in services.items() if not s.get("profiles")}
    assert set(ci["services"]) == started
    for name, service in ci["services"].items():
        assert service["network_mode"] == "host", name
        assert service["image"].startswith("${SY_CI_"), name
    assert ci["networks"]["default"] == {"name": "host", "external": True}
    used = {k for s in ci["services"].values() for k in env(s) if k.startswith("SWITCHYARD_")}
    assert used and used - settings_env_names() == set()


@pytest.mark.parametrize(
    "files", [["docker-compose.yml"], ["docker-compose.yml", "docker-compose.override.yml"]]
)
def test_compose_itself_accepts_the_files(files: list[str]) -> None:
    """The compose tool's own validation (no engine needed): what `docker compose up` would refuse first."""
    compose = compose_command()
    if compose is None:
        skip_or_fail(
            "neither `docker compose` nor `docker-compose` is installed (.ci/run installs docker-compose)"
        )
    done = subprocess.run(
        [*compose, *[a for f in files for a in ("-f", str(ROOT / f))], "config", "-q"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr


def test_prometheus_scrapes_exactly_the_workers_with_the_rules_loaded(
    services: dict[str, dict[str, Any]],
) -> None:
    prom = services["prometheus"]
    mounts = dict(v.split(":")[:2] for v in prom["volumes"])
    assert mounts["./deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prom["command"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert all((ROOT / "deploy" / "prometheus" / f).is_file() for f in config["rule_files"])
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "switchyard"]
    assert job.get("metrics_path", "/metrics") in served_paths()
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {
        f"{env(s)['SWITCHYARD_WEB_HOST']}:{env(s)['SWITCHYARD_WEB_PORT']}" for s in workers(services).values()
    }
    assert targets == expected


def test_grafana_gets_the_provisioning_and_the_dashboard(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "switchyard.yml").read_text()
    )["providers"][0]
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    home = env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (ROOT / "deploy" / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).is_file()
    source = yaml.safe_load(
        (ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"][0]
    url = urlsplit(source["url"])
    assert url.hostname in services
    assert "--web.listen-address" not in " ".join(services[url.hostname]["command"])  # default :9090
    assert url.port == 9090


def test_workers_reach_kafka_and_the_crm_where_they_listen(services: dict[str, dict[str, Any]]) -> None:
    kafka = env(services["kafka"])
    advertised = kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")
    crm_command = services["crm"]["command"]
    crm_port = crm_command[crm_command.index("--port") + 1]
    for name, service in workers(services).items():
        e = env(service)
        assert f"PLAINTEXT://{e['SWITCHYARD_BROKER']}" in advertised, name
        assert e["SWITCHYARD_CRM_BASE_URL"] == f"http://crm:{crm_port}", name
        assert {"kafka", "crm"} <= set(service["depends_on"]), name


def test_the_image_installs_the_package_and_runs_a_worker() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim-bookworm$", dockerfile, re.M)
    # dependencies exactly as locked (hash-checked), then the package itself without resolving anything
    assert re.search(
        r"^RUN /opt/switchyard/bin/pip install --require-hashes --no-deps -r requirements\.lock$",
        dockerfile,
        re.M,
    )
    assert re.search(
        r"^RUN /opt/switchyard/bin/pip install --no-deps --no-build-isolation \. ", dockerfile, re.M
    )
    assert "PYTHONPATH" not in dockerfile
    assert re.search(r"^USER switchyard$", dockerfile, re.M)
    assert (
        re.search(rf"^HEALTHCHECK .*{HEALTH_LIVE}", dockerfile, re.M | re.S) and HEALTH_LIVE in served_paths()
    )
    assert 'ENTRYPOINT ["switchyard"]' in dockerfile and 'CMD ["worker"]' in dockerfile
    for needed in ("app", "topics", "schemas", "samples"):
        assert re.search(rf"^COPY {needed} ", dockerfile, re.M), needed
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_tracing_is_off_unless_an_endpoint_is_given_and_jaeger_is_a_profile(
    services: dict[str, dict[str, Any]],
) -> None:
    from app.core.tracing import wants_tracing

    assert services["jaeger"]["profiles"] == ["tracing"]  # pulled like Grafana: not started in CI
    jaeger_version = re.search(r"jaeger v1\.(\d+)\.0", (ROOT / "deploy" / "jaeger" / "go.mod").read_text())
    assert jaeger_version, "deploy/jaeger/go.mod pins Jaeger"
    # Jaeger releases v1.N and v2.(N-63) together: the image is the version the tests build
    assert services["jaeger"]["image"] == f"jaegertracing/jaeger:2.{int(jaeger_version.group(1)) - 63}.0"
    for name, service in workers(services).items():
        unset = env(service)  # nothing set in the environment: off
        assert unset["OTEL_EXPORTER_OTLP_ENDPOINT"] == "" and not wants_tracing(unset), name
        assert unset["OTEL_TRACES_SAMPLER_ARG"] == "0.01", name
        assert wants_tracing({**unset, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318"}), name
