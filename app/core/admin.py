"""Topic administration from the catalog: create what is missing, report what drifted, never alter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from app.core.catalog import Catalog, TopicSpec
from app.settings import Settings


@dataclass
class TopicReport:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        return {"created": self.created, "existing": self.existing, "drift": self.drift}


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.kafka_client_options(), request_timeout_ms=30000)


def partitions_of(spec: TopicSpec, settings: Settings) -> int:
    return spec.partitions or settings.topic_partitions


async def ensure_topics(settings: Settings, catalog: Catalog, domains: set[str] | None = None) -> TopicReport:
    """Create every missing catalog topic (of ``domains``, or all); report partition and config drift."""
    report = TopicReport()
    wanted = [t for t in catalog.topics.values() if domains is None or t.domain in domains]
    admin = admin_client(settings)
    await admin.start()
    try:
        present = set(await admin.list_topics())
        missing = [t for t in wanted if settings.topic(t.name) not in present]
        if missing:
            await admin.create_topics(
                [
                    NewTopic(
                        settings.topic(t.name),
                        num_partitions=partitions_of(t, settings),
                        replication_factor=settings.topic_replication,
                        topic_configs=t.kafka_config(),
                    )
                    for t in missing
                ]
            )
            report.created = [t.name for t in missing]
        existing = [t for t in wanted if t not in missing]
        report.existing = [t.name for t in existing]
        if existing:
            report.drift = await _drift(admin, settings, existing)
    finally:
        await admin.close()
    return report


async def _drift(admin: AIOKafkaAdminClient, settings: Settings, specs: list[TopicSpec]) -> list[str]:
    drift: list[str] = []
    names = [settings.topic(t.name) for t in specs]
    described = await admin.describe_topics(names)
    partitions = {d["topic"]: len(d.get("partitions", [])) for d in described}
    resources = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
    responses: Any = await admin.describe_configs(resources)
    actual: dict[str, dict[str, str]] = {}
    for resp in responses:
        for res in resp.resources:
            # (error_code, error_message, resource_type, resource_name, configs)
            actual[res[3]] = {c[0]: c[1] for c in res[4]}
    for spec in specs:
        real = settings.topic(spec.name)
        want_p = partitions_of(spec, settings)
        if partitions.get(real) not in (None, want_p):
            drift.append(f"{spec.name}: partitions {partitions.get(real)} (catalog {want_p})")
        for k, v in spec.kafka_config().items():
            have = actual.get(real, {}).get(k)
            if have is not None and have != v:
                drift.append(f"{spec.name}: {k}={have} (catalog {v})")
    return drift


async def list_topics(settings: Settings, catalog: Catalog) -> list[dict[str, Any]]:
    admin = admin_client(settings)
    await admin.start()
    try:
        present = set(await admin.list_topics())
    finally:
        await admin.close()
    return [
        {
            "topic": settings.topic(t.name),
            "exists": settings.topic(t.name) in present,
            "domain": t.domain,
            "role": t.role,
            "key": t.key,
            "value": t.value,
            "cleanup": t.cleanup,
            "retention": t.retention,
        }
        for t in catalog.topics.values()
    ]
