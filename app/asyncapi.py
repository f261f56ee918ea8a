"""``switchyard asyncapi``: an AsyncAPI 3.0 document generated from the topic catalog and the schemas.

Downstream consumers read this to learn every topic's key, value schema and headers, and which topics the worker
publishes (``send``) and consumes (``receive``). Everything comes from ``topics/catalog.yaml``, so the document
cannot drift from what the worker is configured with: a topic's payload is the JSON Schema of the pydantic
model(s) its entry names (``model``), else the file under ``schemas/`` it names (``schema``: draft-07 JSON Schema
or Avro, as AsyncAPI multi-format schemas), else an explicit "no schema" that says what is known; its operations
are its ``sent_by`` / ``received_by``. Models are found by name with importlib, so neither this module nor
``app.core`` imports a domain.

Model schemas go to ``components/schemas`` and payloads refer to them there: pydantic writes nested models as
``$ref: #/$defs/...``, which inside an embedded payload would point at the document's root, not the schema's.
Two models of one class name (each domain has its ``Appointment`` or ``Question``) are named after their domain,
``phoenix.Appointment``, never after the Python module pydantic would spell out.

``servers`` describe the Kafka cluster of the deployment the document is generated for, from its settings
(``SWITCHYARD_BROKER``, ``SWITCHYARD_SECURITY_PROTOCOL``, the SASL mechanism, a client certificate, the schema
registry): one server per bootstrap address, named after ``SWITCHYARD_APP_ID``. Descriptions are Markdown (the
AsyncAPI HTML template renders them): placeholders are written inside code spans, never as bare ``<name>``,
which Markdown takes for an HTML tag and drops.
``tests/unit/test_asyncapi.py`` validates the document against the official AsyncAPI 3.0.0 JSON Schema, resolves
every ``$ref`` in it, and checks what the domains actually emit against the payloads.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app import __version__
from app.core import deadletter as dl
from app.core.catalog import Catalog, TopicSpec, duration_ms
from app.core.errors import ConfigError
from app.paths import SCHEMAS_DIR
from app.settings import Settings

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
JSON_SCHEMA_FORMAT = "application/schema+json;version=draft-07"
AVRO_SCHEMA_FORMAT = "application/vnd.apache.avro;version=1.9.0"
_SCHEMA_REF = "#/components/schemas/{model}"

_DLQ_HEADER_DOCS = {
    dl.STAGE: "decode | validate | enrich | sink",
    dl.CODE: "stable error code, e.g. SCHEMA-REQUIRED, LARA-1003",
    dl.MESSAGE: "the rule that failed (never the record's values)",
    dl.PATH: "JSON pointer of the offending field",
    dl.SOURCE_TOPIC: "topic the record was consumed from",
    dl.SOURCE_PARTITION: "its partition",
    dl.SOURCE_OFFSET: "its offset",
    dl.FAILED_AT: "ISO-8601 UTC instant of the failure",
    dl.APP_VERSION: "Switchyard version that dead-lettered it",
    dl.REPLAY_COUNT: "times `switchyard dlq replay` sent it back (on records replayed at least once)",
    dl.TRACE_ID: "trace id of the span that dead-lettered it (when the worker traces; design note 14)",
    dl.OMITTED: "what the dead letter left out to fit SWITCHYARD_MAX_RECORD_BYTES, with each part's bytes, e.g. "
    "value:1040000 (only then; the record itself stays at its source position)",
}

#: W3C trace context, on every record the worker writes when tracing is on, and continued from every record it
#: reads (app/core/tracing.py).
_TRACE_HEADER_DOCS = {
    "traceparent": "W3C trace context of the hop that wrote the record (when tracing is on; design note 14)",
    "tracestate": "W3C vendor trace state, carried with traceparent",
}

_DEADLETTER_VALUE = (
    "No schema: the original record's value, byte for byte, as it was on the topic named by header "
    f"{dl.SOURCE_TOPIC} (the domain's raw topic, or a table feed when a fold rejected it). It is often the very "
    "record that failed its schema, so nothing about its shape is promised. No value at all when header "
    f"{dl.OMITTED} says the value was left out to fit the record limit."
)
_AVRO_FRAMING = (
    "Avro single-object encoding (C3 01, the schema's 8-byte CRC-64-AVRO fingerprint, the binary body); with "
    "SWITCHYARD_SCHEMA_REGISTRY_URL set, the Confluent wire format instead (00, the 4-byte id the registry gave "
    "the schema under subject `<topic>-value`, the binary body)."
)
_TOMBSTONES = (
    "Records without a value (Kafka tombstones, not JSON null) are published on it: they erase the key."
)


def channel_id(name: str) -> str:
    """The channel, message and operation id part of catalog topic ``name``."""
    return name.replace(".", "_")


def resolve_model(ref: str) -> type[BaseModel]:
    """``module:Class`` from the catalog -> the pydantic model class; a ConfigError names what is wrong."""
    module_name, _, class_name = ref.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), class_name, None) if class_name else None
    except ImportError as exc:
        raise ConfigError(f"catalog model {ref!r}: cannot import {module_name} ({exc})") from exc
    if not (isinstance(found, type) and issubclass(found, BaseModel)):
        raise ConfigError(f"catalog model {ref!r} is not module:Class of a pydantic model")
    return found


def model_schemas(refs: Iterable[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(catalog model ref -> payload schema, components/schemas) for every model ``refs`` names.

    One pydantic call for all of them, so two models of one name from different domains get distinct
    component names instead of overwriting each other.
    """
    models = {ref: resolve_model(ref) for ref in dict.fromkeys(refs)}
    keys, top = models_json_schema(
        [(m, "validation") for m in dict.fromkeys(models.values())], ref_template=_SCHEMA_REF
    )
    payloads = {ref: dict(keys[(model, "validation")]) for ref, model in models.items()}
    defs: dict[str, Any] = dict(top.get("$defs", {}))
    names = {name: readable_name(name) for name in defs}
    if len(set(names.values())) != len(names):
        raise ConfigError(f"two catalog models would share a schema name: {sorted(names)}")
    return _renamed(payloads, names), _renamed({names[k]: v for k, v in defs.items()}, names)


def readable_name(name: str) -> str:
    """A component name without a Python module path: pydantic names clashing models by their module
    (``app__domains__phoenix__models__Appointment``); this is ``phoenix.Appointment`` (the package after
    ``domains``, else the module, then the class)."""
    if "__" not in name:
        return name
    *modules, cls = name.split("__")
    owner = modules[modules.index("domains") + 1] if "domains" in modules[:-1] else modules[-1]
    return f"{owner}.{cls}"


def _renamed(node: Any, names: dict[str, str]) -> Any:
    """``node`` with every ``$ref`` to a renamed component pointing at its new name."""
    if isinstance(node, dict):
        out = {k: _renamed(v, names) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_SCHEMA_REF.format(model="")):
            old = ref.removeprefix(_SCHEMA_REF.format(model=""))
            out["$ref"] = _SCHEMA_REF.format(model=names.get(old, old))
        return out
    if isinstance(node, list):
        return [_renamed(v, names) for v in node]
    return node


_SASL_SCHEMES = {"PLAIN": "plain", "SCRAM-SHA-256": "scramSha256", "SCRAM-SHA-512": "scramSha512"}


def servers(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``servers``, ``components/securitySchemes``) of the deployment ``settings`` describe."""
    secure = settings.security_protocol.endswith("SSL")
    schemes: dict[str, Any] = {}
    if settings.security_protocol.startswith("SASL"):
        schemes["sasl"] = {
            "type": _SASL_SCHEMES[settings.sasl_mechanism],
            "description": f"SASL {settings.sasl_mechanism} (SWITCHYARD_SASL_USERNAME / _PASSWORD)",
        }
    if settings.security_protocol == "SSL" and settings.ssl_certfile is not None:
        schemes["clientCertificate"] = {
            "type": "X509",
            "description": "mutual TLS: the client certificate of SWITCHYARD_SSL_CERTFILE",
        }
    binding: dict[str, Any] = {"bindingVersion": KAFKA_BINDING_VERSION}
    if settings.schema_registry_url:
        binding |= {"schemaRegistryUrl": settings.schema_registry_url, "schemaRegistryVendor": "confluent"}
    hosts = [h.strip() for h in settings.broker.split(",") if h.strip()]
    embedded = not hosts
    common: dict[str, Any] = {
        "protocol": "kafka-secure" if secure else "kafka",
        "description": (
            f"Kafka, security.protocol={settings.security_protocol}. "
            + (
                "No SWITCHYARD_BROKER is set: `switchyard demo` and the tests start an embedded KRaft broker "
                "on a free loopback port; set SWITCHYARD_BROKER to document a real cluster."
                if embedded
                else "A bootstrap server of the cluster (SWITCHYARD_BROKER)."
            )
        ),
        "bindings": {"kafka": binding},
        **({"security": [{"$ref": f"#/components/securitySchemes/{n}"} for n in schemes]} if schemes else {}),
    }
    if embedded:
        return {settings.app_id: {"host": "127.0.0.1", **common}}, schemes
    named = (
        {settings.app_id: hosts[0]}
        if len(hosts) == 1
        else {f"{settings.app_id}-{i}": h for i, h in enumerate(hosts, 1)}
    )
    return {name: {"host": host, **common} for name, host in named.items()}, schemes


def _schema_file(spec: TopicSpec) -> dict[str, Any]:
    assert spec.schema_file is not None
    path = SCHEMAS_DIR / spec.schema_file
    try:
        loaded: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"topic {spec.name}: cannot read schema {path}: {exc}") from exc
    if path.suffix == ".avsc":
        return {"schemaFormat": AVRO_SCHEMA_FORMAT, "schema": loaded}
    if path.suffix == ".json":
        return {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": loaded}
    raise ConfigError(f"topic {spec.name}: schema {spec.schema_file} is neither .json nor .avsc")


def _no_schema(spec: TopicSpec) -> dict[str, Any]:
    """What is known of a value without a schema; never an empty ``{}`` that would read as "anything"."""
    if spec.role == "deadletter":
        why = _DEADLETTER_VALUE
    elif spec.value == "bytes":
        why = "No schema: bytes passed on untouched."
    else:
        why = f"No schema is published for this {spec.value} value."
    return {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/octet-stream",
        "description": why,
    }


def payload(spec: TopicSpec, models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The payload of ``spec``'s message: its model(s), else its schema file, else an explicit "no schema"."""
    if spec.model:
        schemas = [models[ref] for ref in spec.model]
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    if spec.schema_file:
        return _schema_file(spec)
    return _no_schema(spec)


def content_type(spec: TopicSpec) -> str:
    """The message's media type. Untouched bytes (``value: bytes``) that the catalog gives a JSON model or
    schema are JSON (they passed stage one's JSON decode); without one, nothing more than bytes is promised."""
    if spec.value == "avro":
        return "avro/binary"
    if spec.value == "json" or spec.model or (spec.schema_file or "").endswith(".json"):
        return "application/json"
    return "application/octet-stream"


def headers(spec: TopicSpec, catalog: Catalog) -> dict[str, Any]:
    """The headers a record of ``spec`` may carry. Dead letters and unhandled records keep the original
    record's headers (those its domain's raw topic declares); dead letters add the error headers; every record
    may carry the W3C trace context."""
    props: dict[str, Any] = {}
    for name, doc in spec.headers.items():
        props[name] = {"type": "string", **({"description": doc} if doc else {})}
    if spec.role in ("deadletter", "unhandled"):
        for source in catalog.of_domain(spec.domain, "raw"):
            for name, doc in source.headers.items():
                original = f"the original record's header, as on {source.name}"
                props.setdefault(
                    name, {"type": "string", "description": f"{doc} ({original})" if doc else original}
                )
    if spec.role == "deadletter":
        props.update({h: {"type": "string", "description": d} for h, d in _DLQ_HEADER_DOCS.items()})
    for name, doc in _TRACE_HEADER_DOCS.items():
        props.setdefault(name, {"type": "string", "description": doc})
    description = "Kafka record headers, values UTF-8." if props else "No header is declared on this topic."
    return {"type": "object", "description": description, "properties": props}


def _message_description(spec: TopicSpec) -> str:
    parts = [spec.description] if spec.description else []
    if not spec.model and not spec.schema_file:
        parts.append(_no_schema(spec)["description"])
    if spec.value == "avro":
        parts.append(_AVRO_FRAMING)
    if spec.tombstones:
        parts.append(_TOMBSTONES)
    return " ".join(parts)


def _channel_bindings(spec: TopicSpec, address: str) -> dict[str, Any]:
    config: dict[str, Any] = {"cleanup.policy": spec.cleanup.split(",")}
    if spec.cleanup != "compact":
        config["retention.ms"] = duration_ms(spec.retention)
    return {
        "kafka": {"topic": address, "topicConfiguration": config, "bindingVersion": KAFKA_BINDING_VERSION}
    }


def _operation(action: str, cid: str, who: str, address: str) -> dict[str, Any]:
    verb = "produces to" if action == "send" else "consumes"
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{cid}"},
        "messages": [{"$ref": f"#/channels/{cid}/messages/{cid}"}],
        "summary": f"{who} {verb} {address}",
    }


def document(catalog: Catalog, settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every catalog topic for the deployment ``settings`` describe: its servers,
    and channel addresses with its ``SWITCHYARD_TOPIC_PREFIX``, so they are the real Kafka topic names."""
    topic_prefix = settings.topic_prefix
    server_docs, security_schemes = servers(settings)
    models, schemas = model_schemas(ref for spec in catalog.topics.values() for ref in spec.model)
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, spec in catalog.topics.items():
        cid = channel_id(name)
        address = f"{topic_prefix}{name}"
        messages[cid] = {
            "name": cid,
            "title": name,
            "summary": spec.description or name,
            "description": _message_description(spec),
            "contentType": content_type(spec),
            "payload": payload(spec, models),
            "headers": headers(spec, catalog),
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": spec.key},
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
        retention = "compacted" if spec.cleanup == "compact" else f"retention {spec.retention}"
        channels[cid] = {
            "address": address,
            "title": name,
            "description": (
                f"{spec.description} Key: {spec.key}. Domain {spec.domain}, role {spec.role}; "
                f"cleanup.policy={spec.cleanup}, {retention}."
            ).strip(),
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
            "bindings": _channel_bindings(spec, address),
        }
        if spec.sent_by:
            operations[f"send_{cid}"] = _operation("send", cid, spec.sent_by, address)
        if spec.received_by:
            operations[f"receive_{cid}"] = _operation("receive", cid, spec.received_by, address)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Switchyard",
            "version": __version__,
            "description": (
                "Every topic Switchyard's worker uses. Operations are the worker's own: its agents and table "
                "folds, its webhook ingress and its CRM sink; a topic the worker both writes and reads has a "
                "send and a receive operation. The operator commands `switchyard produce` (to raw topics) and "
                "`switchyard dlq list|replay` (dead-letter topics, replayed to their source topic) are not "
                "operations."
            ),
        },
        "defaultContentType": "application/json",
        "servers": server_docs,
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
            "messages": messages,
            **({"securitySchemes": security_schemes} if security_schemes else {}),
        },
    }
