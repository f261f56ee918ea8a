"""Schema registry support: where ``SWITCHYARD_SCHEMA_REGISTRY_URL`` is set, Avro outputs go out in Confluent wire
format under the ids the registry gives their writer schemas.

Domains always encode Avro as single-object encoding (self-describing, no network); both framings carry the
same binary body, so switching to the Confluent framing is a header swap done on the way out
(:func:`app.core.avro.reframe_confluent`). The ids are asked for once, when the worker starts: every catalog
topic whose value is Avro registers its schema under the subject ``<topic>-value`` (the registry's default
TopicNameStrategy). Registering is idempotent on the registry's side (the same schema keeps its id), and a
registry that cannot be reached stops the worker with its address and answer instead of writing records that
readers of the Confluent framing could not decode.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from app.core.avro import catalog_schema
from app.core.catalog import Catalog
from app.core.errors import ConfigError
from app.settings import Settings

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


def subject_of(topic: str) -> str:
    """TopicNameStrategy: the value schema of ``topic`` lives under ``<topic>-value``."""
    return f"{topic}-value"


def register_schema(url: str, subject: str, canonical: str, timeout: float = 10.0) -> int:
    """Register ``canonical`` (an Avro schema as JSON text) under ``subject``; the registry's id for it."""
    endpoint = f"{url.rstrip('/')}/subjects/{subject}/versions"
    try:
        resp = httpx.post(
            endpoint,
            json={"schema": canonical},
            headers={"Content-Type": CONTENT_TYPE, "Accept": CONTENT_TYPE},
            timeout=timeout,
        )
    except httpx.HTTPError as exc:
        raise ConfigError(
            f"schema registry {url} unreachable while registering {subject} ({type(exc).__name__})",
            code="CONFIG-REGISTRY",
        ) from None
    if resp.status_code // 100 != 2:
        raise ConfigError(
            f"schema registry {url} refused {subject}: HTTP {resp.status_code} {resp.text[:200]}",
            code="CONFIG-REGISTRY",
        )
    try:
        schema_id = resp.json()["id"]
    except (ValueError, KeyError, TypeError):
        schema_id = None
    if not isinstance(schema_id, int):
        raise ConfigError(
            f"schema registry {url} answered {subject} without an integer id", code="CONFIG-REGISTRY"
        )
    return schema_id


def register_avro_topics(settings: Settings, catalog: Catalog) -> Mapping[str, int]:
    """Catalog name -> registry id of its value schema, for every Avro topic; empty without a registry."""
    if not settings.schema_registry_url:
        return {}
    ids: dict[str, int] = {}
    for name, spec in catalog.topics.items():
        if spec.value != "avro" or not spec.schema_file:
            continue
        schema = catalog_schema(spec.schema_file)
        ids[name] = register_schema(
            settings.schema_registry_url, subject_of(settings.topic(name)), schema.canonical
        )
    return ids
