"""Registering the catalog's Avro schemas with a schema registry (a real HTTP server on loopback)."""

from __future__ import annotations

import pytest

from app.core.avro import catalog_schema
from app.core.catalog import load_catalog
from app.core.errors import ConfigError
from app.core.registry import register_avro_topics, register_schema, subject_of
from app.settings import Settings
from tests.registry import TestRegistry
from tests.worker import free_port

AUDIT = "audit.migration"


def test_without_a_registry_nothing_is_registered() -> None:
    settings = Settings(broker="127.0.0.1:1")
    assert register_avro_topics(settings, load_catalog(settings.catalog_file)) == {}


def test_every_avro_topic_registers_its_schema_under_topic_value() -> None:
    with TestRegistry() as registry:
        settings = Settings(broker="127.0.0.1:1", schema_registry_url=registry.url, topic_prefix="t1.")
        catalog = load_catalog(settings.catalog_file)
        ids = register_avro_topics(settings, catalog)
        again = register_avro_topics(settings, catalog)
    avro_topics = {n for n, spec in catalog.topics.items() if spec.value == "avro"}
    assert AUDIT in avro_topics and set(ids) == avro_topics
    assert again == ids  # the same schema keeps its id
    schema = catalog_schema(catalog.topics[AUDIT].schema_file or "")
    assert registry.ids[schema.canonical] == ids[AUDIT]
    assert registry.subjects == {subject_of(f"t1.{AUDIT}"): [ids[AUDIT]]}


def test_a_registry_that_refuses_stops_the_worker_with_its_answer() -> None:
    with TestRegistry() as registry:
        registry.fail_with = 422
        with pytest.raises(ConfigError) as caught:
            register_schema(registry.url, "s-value", '{"type": "string"}')
    assert caught.value.code == "CONFIG-REGISTRY"
    assert registry.url in caught.value.message and "HTTP 422" in caught.value.message


def test_an_unreachable_registry_is_named_in_the_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError) as caught:
        register_schema(url, "s-value", '{"type": "string"}', timeout=2.0)
    assert caught.value.code == "CONFIG-REGISTRY"
    assert url in caught.value.message and "unreachable" in caught.value.message
