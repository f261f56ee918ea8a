"""``switchyard asyncapi``: an AsyncAPI 3.0 document generated from the topic catalog and the schemas.

Downstream consumers read this to learn every topic's key, value schema and headers. Switchyard *receives* from
raw, feed and command topics and *sends* to every other; dead-letter topics document the error headers.
"""

from __future__ import annotations

import json
from typing import Any

from app import __version__
from app.core import deadletter as dl
from app.core.catalog import Catalog, TopicSpec
from app.core.paths import SCHEMAS_DIR
from app.core.records import EVENT_TYPE_HEADER

_RECEIVED = {"raw", "feed", "commands"}
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
    dl.REPLAY_COUNT: "times `switchyard dlq replay` sent it back",
}


def _payload(spec: TopicSpec) -> dict[str, Any]:
    if spec.schema_file and spec.schema_file.endswith(".json"):
        path = SCHEMAS_DIR / spec.schema_file
        if path.exists():
            schema: dict[str, Any] = json.loads(path.read_text())
            return schema
    if spec.value == "avro":
        return {"type": "string", "format": "binary", "description": f"Avro ({spec.schema_file})"}
    if spec.value == "bytes":
        return {"type": "string", "format": "binary", "description": "original bytes, untouched"}
    return {"type": ["object", "null"], "description": "JSON; null is a tombstone on compacted topics"}


def _headers(spec: TopicSpec) -> dict[str, Any]:
    props: dict[str, Any] = {h: {"type": "string"} for h in spec.headers}
    if EVENT_TYPE_HEADER in spec.headers:
        props[EVENT_TYPE_HEADER]["description"] = "event type / trigger of the record"
    if spec.role == "deadletter":
        props.update({h: {"type": "string", "description": d} for h, d in _DLQ_HEADER_DOCS.items()})
    return {"type": "object", "properties": props}


def document(catalog: Catalog) -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for name, spec in catalog.topics.items():
        cid = name.replace(".", "_")
        messages[cid] = {
            "name": cid,
            "contentType": "avro/binary" if spec.value == "avro" else "application/json",
            "payload": _payload(spec),
            "headers": _headers(spec),
            "bindings": {"kafka": {"key": {"type": "string", "description": spec.key}}},
        }
        channels[cid] = {
            "address": name,
            "description": f"{spec.domain} {spec.role}; cleanup.policy={spec.cleanup}, retention {spec.retention}",
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
            "bindings": {"kafka": {"topicConfiguration": {"cleanup.policy": spec.cleanup.split(",")}}},
        }
        action = "receive" if spec.role in _RECEIVED else "send"
        operations[f"{action}_{cid}"] = {"action": action, "channel": {"$ref": f"#/channels/{cid}"}}
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Switchyard",
            "version": __version__,
            "description": "Topics Switchyard consumes (receive) and produces (send).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
