"""deploy/k8s/ held to the code: settings names, per-pod identity and storage, probes, services and scraping."""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from app.paths import ROOT
from app.settings import Settings
from tests.ops.settings_env import HEALTH_LIVE, HEALTH_READY, METRICS, served_paths, settings_env_names

K8S = ROOT / "deploy" / "k8s"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    found = [d for path in sorted(K8S.glob("*.yaml")) for d in yaml.safe_load_all(path.read_text()) if d]
    return [d for d in found if d.get("kind") != "Kustomization"]


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (c,) = one(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"]
    return cast("dict[str, Any]", c)


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def secret_settings() -> set[str]:
    hints = typing.get_type_hints(Settings)
    return {
        f"SWITCHYARD_{name.upper()}"
        for name in Settings.model_fields
        if SecretStr in (typing.get_args(hints[name]) or (hints[name],))
    }


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_switchyard_variable_is_a_setting(docs: list[dict[str, Any]]) -> None:
    names = set(one(docs, "ConfigMap")["data"]) | set(one(docs, "Secret")["stringData"])
    names -= {n for n in names if n.startswith("OTEL_")}  # OpenTelemetry's own (the tracing test below)
    names |= {e["name"] for e in container(docs)["env"] if e["name"].startswith("SWITCHYARD_")}
    assert names and names - settings_env_names() == set()


def test_secrets_are_in_the_secret_and_nowhere_else(docs: list[dict[str, Any]]) -> None:
    secrets = secret_settings()
    assert {"SWITCHYARD_SASL_PASSWORD", "SWITCHYARD_API_TOKEN", "SWITCHYARD_CRM_TOKEN"} <= secrets
    assert set(one(docs, "Secret")["stringData"]) == secrets
    assert not secrets & set(one(docs, "ConfigMap")["data"])
    assert not secrets & {e["name"] for e in container(docs)["env"]}
    refs = container(docs)["envFrom"]
    assert {"configMapRef": {"name": one(docs, "ConfigMap")["metadata"]["name"]}} in refs
    assert {"secretRef": {"name": one(docs, "Secret")["metadata"]["name"]}} in refs


def resolved_env(docs: list[dict[str, Any]], pod_name: str, pod_ip: str) -> dict[str, str]:
    """The container's environment as the kubelet would build it for one pod."""
    env = {**one(docs, "ConfigMap")["data"], **one(docs, "Secret")["stringData"]}
    fields = {"metadata.name": pod_name, "status.podIP": pod_ip}
    for item in container(docs)["env"]:
        if "valueFrom" in item:
            env[item["name"]] = fields[item["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], str(item["value"]))
    return {k: str(v) for k, v in env.items()}


def settings_for(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    with monkeypatch.context() as m:
        for key in [k for k in os.environ if k.startswith("SWITCHYARD_")]:
            m.delenv(key)
        for key, value in env.items():
            m.setenv(key, value)
        return Settings()


def test_each_pod_gets_valid_settings_and_a_stable_id(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = settings_for(resolved_env(docs, "switchyard-0", "10.0.0.7"), monkeypatch)
    b = settings_for(resolved_env(docs, "switchyard-1", "10.0.0.8"), monkeypatch)
    assert (a.worker_id, b.worker_id) == ("switchyard-0", "switchyard-1")
    assert a.web_host == "10.0.0.7"
    assert a.security_protocol == "SASL_SSL" and a.sasl_password.get_secret_value()
    assert a.app_id == b.app_id  # one consumer group
    assert a.heartbeat_interval_seconds * 3 <= a.session_timeout_seconds


def test_the_data_dir_is_a_volume_per_pod(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = one(docs, "StatefulSet")
    data_dir = settings_for(resolved_env(docs, "switchyard-0", "10.0.0.7"), monkeypatch).data_dir
    templates = {t["metadata"]["name"] for t in s["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    assert mounts[str(data_dir)] in templates


def test_replicas_do_not_exceed_partitions(docs: list[dict[str, Any]]) -> None:
    partitions = int(one(docs, "ConfigMap")["data"]["SWITCHYARD_TOPIC_PARTITIONS"])
    assert 1 < one(docs, "StatefulSet")["spec"]["replicas"] <= partitions


def test_probes_use_the_health_paths_on_the_web_port(docs: list[dict[str, Any]]) -> None:
    c = container(docs)
    assert {HEALTH_LIVE, HEALTH_READY} <= served_paths()
    assert c["readinessProbe"]["httpGet"]["path"] == HEALTH_READY
    assert c["livenessProbe"]["httpGet"]["path"] == HEALTH_LIVE
    assert c["startupProbe"]["httpGet"]["path"] == HEALTH_LIVE
    web_port = int(one(docs, "ConfigMap")["data"]["SWITCHYARD_WEB_PORT"])
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert ports[c[probe]["httpGet"]["port"]] == web_port, probe


def test_services_and_the_statefulset_agree(docs: list[dict[str, Any]]) -> None:
    s = one(docs, "StatefulSet")
    labels = pod_labels(docs)
    assert selects(s["spec"]["selector"]["matchLabels"], labels)
    headless = one(docs, "Service", s["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    port_names = {p["name"] for p in container(docs)["ports"]}
    for service in (d for d in docs if d["kind"] == "Service"):
        assert selects(service["spec"]["selector"], labels), service["metadata"]["name"]
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_the_service_monitor_scrapes_every_pod_once_ready_or_not(docs: list[dict[str, Any]]) -> None:
    monitor = one(docs, "ServiceMonitor")
    selected = [
        d
        for d in docs
        if d["kind"] == "Service"
        and selects(monitor["spec"]["selector"]["matchLabels"], d["metadata"]["labels"])
    ]
    assert [d["metadata"]["name"] for d in selected] == [one(docs, "StatefulSet")["spec"]["serviceName"]]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == METRICS and METRICS in served_paths()
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}


def test_disruptions_take_one_worker_at_a_time(docs: list[dict[str, Any]]) -> None:
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod_labels(docs))


def test_the_readme_covers_the_scaling_notes() -> None:
    text = Path(K8S / "README.md").read_text().lower()
    for topic in ("partitions", "replicas", "consumer group", "standby", "session timeout"):
        assert topic in text, topic


def test_tracing_is_wired_through_the_otel_variables(
    docs: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.tracing import wants_tracing

    env = resolved_env(docs, "switchyard-1", "10.0.0.7")
    assert wants_tracing(env)
    assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).port == 4318  # OTLP/HTTP, what the exporter speaks
    assert (
        env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio" and float(env["OTEL_TRACES_SAMPLER_ARG"]) < 1
    )
    assert "service.instance.id=switchyard-1" in env["OTEL_RESOURCE_ATTRIBUTES"]
