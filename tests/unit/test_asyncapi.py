"""``switchyard asyncapi``: a valid AsyncAPI 3.0 document that says what the worker really does.

Four things are held here. The document is valid for the official tooling: the official parser
(``@asyncapi/parser``, installed from the npm registry into ``tests/asyncapi_official/`` on first use) reports no
error and no warning, it is valid against the official AsyncAPI 3.0.0 JSON Schema (vendored in
``tests/fixtures/asyncapi/``, resolved offline), and every ``$ref`` in it resolves. What a reader sees is right:
every description survives CommonMark rendering (the HTML template renders them as Markdown: no ``<name>`` read as
an HTML tag, no paragraph indented into a code block), schema names carry no Python module path, and the servers
are the deployment's. Every catalog topic has a
payload and the operations the worker's code implies (raw topics and table feeds are consumed, webhook raw
topics are also produced by the ingress, everything the rules emit is produced). And the values the domains
emit for their seed samples and for generated traffic validate against the published payloads, with no
undocumented field, so a model in ``published.py`` cannot drift from the dicts the code builds.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from unittest.mock import MagicMock

import jsonschema
import orjson
import pytest
from click.testing import CliRunner
from jsonschema.exceptions import best_match
from markdown_it import MarkdownIt
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

from app.asyncapi import channel_id, document, readable_name
from app.cli import main
from app.core import deadletter as dl
from app.core.avro import catalog_schema, decode_single_object
from app.core.catalog import Catalog, catalog_of
from app.core.codecs import encode_json
from app.core.domain import domains, load_domain
from app.core.errors import RecordError
from app.core.records import DomainRules, Emit, Headers, RawRecord
from app.settings import Settings

ASYNCAPI_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "asyncapi" / "3.0.0.json"
OFFICIAL_PARSER = Path(__file__).resolve().parents[1] / "asyncapi_official"
#: the settings ``doc()`` is generated for; init arguments win over SWITCHYARD_* variables of the test run
DEFAULT_SETTINGS: dict[str, Any] = {"broker": "", "topic_prefix": "", "security_protocol": "PLAINTEXT"}
DOC_URI = "urn:switchyard:asyncapi"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
#: about this many generated raw records per domain on top of its seed samples
TRAFFIC = 150


@cache
def catalog() -> Catalog:
    """The catalog of the run: ``SWITCHYARD_EXTRA_CATALOGS`` adds test-only domains, which every test here then
    holds to the same promises as the real ones."""
    return catalog_of(Settings())


@cache
def doc() -> dict[str, Any]:
    return document(catalog(), Settings(**DEFAULT_SETTINGS))


def _refuse(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs alias mypy does not read; offline: every definition must come from the vendored file


def _offline_registry() -> Registry[Any]:
    """A registry that retrieves nothing. (``retrieve`` is an attrs field alias, which mypy does not read.)"""
    return Registry(retrieve=_refuse)  # type: ignore[call-arg]


def asyncapi_validator() -> jsonschema.Draft7Validator:
    """The official meta-schema, its ``$ref``s (absolute ``http://asyncapi.com/...`` ids) resolved only against
    the definitions embedded in the file itself: a registry that refuses to retrieve anything."""
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    registry: Registry[Any] = (
        _offline_registry().with_resource(schema["$id"], Resource.from_contents(schema)).crawl()
    )
    return jsonschema.Draft7Validator(
        schema, registry=registry, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def asyncapi_errors(document_: dict[str, Any]) -> list[str]:
    """Readable errors: the deepest likely cause of each top-level failure (``oneOf`` errors alone say little)."""
    return [
        f"{best_match([e]).json_path}: {best_match([e]).message[:300]}"
        for e in asyncapi_validator().iter_errors(document_)
    ]


def operations_of(name: str) -> set[str]:
    cid = channel_id(name)
    return {
        op["action"] for op in doc()["operations"].values() if op["channel"]["$ref"] == f"#/channels/{cid}"
    }


# ---- the document against the official schema --------------------------------------------------------------


def test_every_catalog_topic_is_a_channel_with_an_operation_and_a_message() -> None:
    cat = catalog()
    doc = document(cat, Settings(**DEFAULT_SETTINGS))
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == set(cat.topics)
    for cid, channel in doc["channels"].items():
        (ref,) = channel["messages"].values()
        assert ref["$ref"] == f"#/components/messages/{cid}"
        assert cid in doc["components"]["messages"]
    actions = {op["channel"]["$ref"].split("/")[-1]: op["action"] for op in doc["operations"].values()}
    assert actions["pismo_raw"] == "receive" and actions["audit_migration"] == "send"
    assert actions["crm_commands"] == "receive"
    dlq_headers = doc["components"]["messages"]["vome_deadletter"]["headers"]["properties"]
    assert set(dl.DLQ_HEADERS) <= set(dlq_headers)


def test_document_is_valid_against_the_official_asyncapi_3_0_0_schema() -> None:
    errors = asyncapi_errors(doc())
    assert not errors, "\n".join(errors[:20])


def test_the_validation_catches_an_invalid_document() -> None:
    """Guards the test above against passing vacuously (a schema that resolves to nothing accepts anything)."""
    broken = copy.deepcopy(doc())
    next(iter(broken["operations"].values()))["action"] = "publish"  # AsyncAPI 2 wording, not 3
    assert asyncapi_errors(broken)
    broken = copy.deepcopy(doc())
    del broken["info"]["version"]
    assert asyncapi_errors(broken)
    broken = copy.deepcopy(doc())
    broken["channels"]["pismo_raw"]["bindings"]["kafka"]["topicConfiguration"]["cleanup.policy"] = ["keep"]
    assert asyncapi_errors(broken)


# ---- the official parser ----------------------------------------------------------------------------------


@cache
def official_parser() -> tuple[str, Path]:
    """(node, the validating script); ``npm ci`` installs the pinned ``@asyncapi/parser`` on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("node and npm are needed to run the official AsyncAPI parser (Debian: nodejs, npm)")
    if not (OFFICIAL_PARSER / "node_modules" / "@asyncapi" / "parser" / "package.json").is_file():
        subprocess.run(
            [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=OFFICIAL_PARSER,
            check=True,
            timeout=600,
            env={**os.environ, "SCARF_ANALYTICS": "false"},
        )
    return node, OFFICIAL_PARSER / "validate.mjs"


def official_diagnostics(document_: dict[str, Any]) -> list[dict[str, Any]]:
    """``Parser().validate(document)`` of ``@asyncapi/parser``: every diagnostic (severity 0 error, 1 warning,
    2 information, 3 hint)."""
    node, script = official_parser()
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(document_, f)
        f.flush()
        run = subprocess.run([node, str(script), f.name], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    found: list[dict[str, Any]] = json.loads(run.stdout)
    return found


def errors_and_warnings(document_: dict[str, Any]) -> list[str]:
    return [
        f"{d['code']} at /{'/'.join(map(str, d['path']))}: {d['message']}"
        for d in official_diagnostics(document_)
        if d["severity"] <= 1
    ]


CLUSTERS: dict[str, dict[str, Any]] = {
    "embedded": DEFAULT_SETTINGS,
    "sasl-ssl-cluster-with-registry": {
        **DEFAULT_SETTINGS,
        "broker": "kafka-1.internal:9093,kafka-2.internal:9093",
        "security_protocol": "SASL_SSL",
        "schema_registry_url": "https://registry.internal:8081",
        "topic_prefix": "prod.",
    },
    "mutual-tls": {
        **DEFAULT_SETTINGS,
        "broker": "kafka.internal:9094",
        "security_protocol": "SSL",
        "ssl_certfile": "/etc/switchyard/client.pem",
    },
}


@pytest.mark.parametrize("cluster", sorted(CLUSTERS))
def test_the_official_parser_reports_no_error_and_no_warning(cluster: str) -> None:
    found = errors_and_warnings(document(catalog(), Settings(**CLUSTERS[cluster])))
    assert found == [], "\n".join(found[:20])


def test_the_official_parser_really_checks_the_document() -> None:
    """Guards the test above: a dangling reference and an AsyncAPI 2 action are errors for the parser."""
    broken = copy.deepcopy(doc())
    broken["components"]["messages"]["crm_commands"]["payload"] = {"$ref": "#/components/schemas/Nowhere"}
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert any(d["severity"] == 0 for d in official_diagnostics(broken))


# ---- what a reader of the rendered document sees -----------------------------------------------------------


def _descriptions(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description" and isinstance(value, str):
                yield path or "/", value
            yield from _descriptions(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _descriptions(value, f"{path}/{i}")


_MARKDOWN = MarkdownIt("commonmark")  # raw HTML enabled, as CommonMark and marked have it


def markdown_losses(text: str) -> list[str]:
    """What rendering ``text`` as CommonMark would hide or garble: a ``<...>`` taken for raw HTML (sanitised
    away by the HTML template, or swallowed by a browser) and indented lines turned into a code block."""
    found = []
    for token in _MARKDOWN.parse(text):
        children = token.children or []
        for t in [token, *children]:
            if t.type in ("html_inline", "html_block"):
                found.append(f"raw HTML {t.content.strip()!r}")
            elif t.type == "code_block":
                found.append(f"indented code block {t.content[:60]!r}")
    return found


def test_every_description_survives_markdown_rendering() -> None:
    for cluster in CLUSTERS.values():
        losses = {
            path: lost
            for path, text in _descriptions(document(catalog(), Settings(**cluster)))
            if (lost := markdown_losses(text))
        }
        assert losses == {}


def test_the_markdown_check_sees_what_the_renderer_loses() -> None:
    """Guards the test above with the defects it was written for."""
    assert markdown_losses("subject <topic>-value") == ["raw HTML '<topic>'"]
    assert markdown_losses("<previous status or NONE>-><status>") != []
    assert markdown_losses("First line.\n\n    Second paragraph, indented.") != []
    assert markdown_losses("subject `<topic>-value`, e.g. `NONE->ACCEPTED`") == []


def test_schema_names_are_model_names_not_python_module_paths() -> None:
    schemas = doc()["components"]["schemas"]
    assert {"phoenix.Appointment", "appointments.Appointment", "vome.Question", "CrmCommand"} <= set(schemas)
    for name in schemas:
        assert (
            re.fullmatch(r"[A-Za-z0-9.\-_]+", name)
            and "__" not in name
            and not name.startswith(("app.", "app_"))
        ), name
    assert readable_name("app__domains__phoenix__models__Appointment") == "phoenix.Appointment"
    assert readable_name("CrmCommand") == "CrmCommand"


def test_the_crm_command_description_names_only_fields_it_has() -> None:
    """A producer following the description must not be refused by the closed schema."""
    schema = doc()["components"]["schemas"]["CrmCommand"]
    named = set(re.findall(r"``([A-Za-z_][A-Za-z0-9_]*)``", schema["description"]))
    assert named and named <= set(schema["properties"]), named - set(schema["properties"])
    assert schema.get("additionalProperties") is False


def test_servers_are_the_deployment_s_bootstrap_servers_with_their_security() -> None:
    embedded = doc()["servers"]
    assert list(embedded) == ["switchyard"] and embedded["switchyard"]["protocol"] == "kafka"
    assert "SWITCHYARD_BROKER" in embedded["switchyard"]["description"]
    cluster = document(
        catalog(),
        Settings(**CLUSTERS["sasl-ssl-cluster-with-registry"], app_id="orders", sasl_password="pw-Zq81x"),
    )
    assert {name: s["host"] for name, s in cluster["servers"].items()} == {
        "orders-1": "kafka-1.internal:9093",
        "orders-2": "kafka-2.internal:9093",
    }
    server = cluster["servers"]["orders-1"]
    assert server["protocol"] == "kafka-secure"
    assert server["security"] == [{"$ref": "#/components/securitySchemes/sasl"}]
    assert cluster["components"]["securitySchemes"]["sasl"]["type"] == "scramSha512"
    assert server["bindings"]["kafka"]["schemaRegistryUrl"] == "https://registry.internal:8081"
    assert cluster["channels"]["crm_commands"]["address"] == "prod.crm.commands"
    mtls = document(catalog(), Settings(**CLUSTERS["mutual-tls"]))["servers"]["switchyard"]
    assert mtls["security"] == [{"$ref": "#/components/securitySchemes/clientCertificate"}]
    assert "pw-Zq81x" not in json.dumps(cluster)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_ref_in_the_document_resolves_inside_it() -> None:
    """The meta-schema checks that a ``$ref`` is a string, not that it points anywhere."""
    refs = set(_refs(doc()))
    assert any(r.startswith("#/components/schemas/") for r in refs)
    for ref in refs:
        assert ref.startswith("#/"), f"{ref} leaves the document"
        node: Any = doc()
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            assert isinstance(node, dict) and part in node, f"{ref} does not resolve"
            node = node[part]


def test_asyncapi_command_prints_the_document_with_the_deployment_topic_prefix() -> None:
    result = CliRunner().invoke(main, ["asyncapi"], env={"SWITCHYARD_TOPIC_PREFIX": "staging."})
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed["channels"]["crm_commands"]["address"] == "staging.crm.commands"
    assert printed["channels"]["crm_commands"]["bindings"]["kafka"]["topic"] == "staging.crm.commands"
    assert not asyncapi_errors(printed)


# ---- every topic: payload, headers, operations -------------------------------------------------------------


def test_every_catalog_topic_has_a_payload_and_says_so_when_it_has_no_schema() -> None:
    messages = doc()["components"]["messages"]
    for name, spec in catalog().topics.items():
        message = messages[channel_id(name)]
        payload = message["payload"]
        assert payload, f"{name}: empty payload reads as 'anything'"
        assert spec.description, f"{name}: the catalog entry needs a description"
        if spec.model or spec.schema_file:
            continue
        assert spec.value == "bytes", f"{name}: a JSON or Avro topic must name its model or schema"
        assert payload["description"].startswith("No schema"), name
        assert payload["description"] in message["description"], name


def test_payloads_come_from_the_models_and_schema_files_the_catalog_names() -> None:
    messages = doc()["components"]["messages"]
    schemas = doc()["components"]["schemas"]
    assert messages["crm_commands"]["payload"] == {"$ref": "#/components/schemas/CrmCommand"}
    assert "command_id" in schemas["CrmCommand"]["properties"]
    audit = messages["audit_migration"]["payload"]
    assert audit["schemaFormat"] == "application/vnd.apache.avro;version=1.9.0"
    assert audit["schema"]["name"] == "MigrationAudit"
    seed = messages["pismo_raw"]["payload"]
    assert seed["schemaFormat"] == "application/schema+json;version=draft-07"
    assert seed["schema"]["$id"] == "https://pismo.io/events/migration/customer_outgoing-1.json"
    lara = messages["lara_raw"]["payload"]["anyOf"]
    assert len(lara) == 6 and {"$ref": "#/components/schemas/MemberStatusChange"} in lara
    # the projection is typed by the seed through the allow-list: what never leaves vome.raw is not promised
    data = schemas["ProfileProjection"]["properties"]["data"]["properties"]
    assert "profile_details" in data and "medical_information" not in data
    assert "date_of_birth" not in data["profile_details"]["properties"]


def test_deadletter_topics_document_the_error_headers_and_the_original_ones() -> None:
    messages = doc()["components"]["messages"]
    for spec in catalog().topics.values():
        if spec.role != "deadletter":
            continue
        props = messages[channel_id(spec.name)]["headers"]["properties"]
        assert set(dl.DLQ_HEADERS) | {dl.REPLAY_COUNT, dl.TRACE_ID, "traceparent"} <= set(props), spec.name
    assert "switchyard.event-type" in messages["vome_deadletter"]["headers"]["properties"]
    assert "switchyard.crm.status" in messages["crm_deadletter"]["headers"]["properties"]
    # every record may carry its trace (design note 14)
    assert all("traceparent" in m["headers"]["properties"] for m in messages.values())


def test_directions_of_named_topics() -> None:
    # published by the Vome and appointments domains, consumed by the CRM sink
    assert operations_of("crm.commands") == {"send", "receive"}
    # written by the webhook ingress, read by stage one
    assert operations_of("vome.raw") == operations_of("appointments.raw") == {"send", "receive"}
    # upstream writes, Switchyard only reads
    assert (
        operations_of("pismo.raw") == operations_of("lara.raw") == operations_of("phoenix.raw") == {"receive"}
    )
    # pure outputs
    for name in (
        "audit.migration",
        "vome.bookings",
        "lara.compliance",
        "phoenix.unhandled",
        "crm.deadletter",
    ):
        assert operations_of(name) == {"send"}, name
    # stage one writes a feed that a table fold reads; an output that also feeds a table
    assert (
        operations_of("lara.compliance.feed")
        == operations_of("phoenix.sessions.enriched")
        == {"send", "receive"}
    )


def test_every_topic_has_an_operation() -> None:
    for name in catalog().topics:
        assert operations_of(name), f"{name}: neither sent nor received by the worker?"


def _rules() -> dict[str, DomainRules]:
    return {d.name: d.rules for d in domains(catalog())}


def _webhook_domains(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Domains whose views serve a webhook: their raw topic is written by the worker's ingress."""
    found: set[str] = set()
    for domain in domains(catalog()):
        if domain.views is None:
            continue
        views = importlib.import_module(domain.views)
        monkeypatch.setattr(views, "webhook", lambda runtime, source: found.add(source.domain), raising=False)
        monkeypatch.setattr(views, "table_query", lambda *args, **kwargs: None, raising=False)
        views.register(MagicMock())  # the other views only need something to hang their routes on
    return found


def test_operations_agree_with_what_the_code_consumes(monkeypatch: pytest.MonkeyPatch) -> None:
    cat = catalog()
    consumed = {cat.raw_topic(d).name for d in cat.domains} | {"crm.commands"}
    consumed |= {t.source_topic for rules in _rules().values() for t in rules.tables}
    for name, spec in cat.topics.items():
        assert (name in consumed) == bool(spec.received_by), f"{name}: received_by disagrees with the code"
    webhooks = _webhook_domains(monkeypatch)
    assert {"vome", "appointments"} <= webhooks
    for domain in cat.domains:
        raw = cat.raw_topic(domain)
        assert bool(raw.sent_by) == (domain in webhooks), f"{raw.name}: sent_by disagrees with the ingress"
    for name, spec in cat.topics.items():
        if spec.role == "deadletter":
            assert spec.sent_by, name


# ---- what the domains emit, against what the document promises ---------------------------------------------


def _traffic(domain: str, rng: random.Random) -> list[tuple[bytes | None, bytes | None, Headers]]:
    """(key, value, headers) of generated raw records: the domain's own traffic source, as upstream would publish
    them (redeliveries, broken records, events passed on untouched)."""
    found = load_domain(catalog(), domain)
    if found.traffic is None:
        return []
    return [(r.key, r.value, r.headers) for r in found.traffic_source().generate(rng, TRAFFIC, NOW).records]


def _raw_records(domain: str, rules: DomainRules) -> Iterator[RawRecord]:
    raw_topic = catalog().raw_topic(domain).name
    offset = 0
    for s in rules.samples():
        yield RawRecord(s.value, rules.key_of(s.value, s.event_type), s.headers, raw_topic, 0, offset)
        offset += 1
    for key, value, headers in _traffic(domain, random.Random(20260101)):
        yield RawRecord(value, key, headers, raw_topic, 1, offset, 1_767_225_600_000)
        offset += 1


@cache
def emitted() -> dict[str, list[Emit]]:
    """Every record the domains' rules and folds emit for their samples and generated traffic, by topic (the
    runtime's path without a broker: process -> route -> folds fed by what was routed, in order)."""
    out: dict[str, list[Emit]] = defaultdict(list)
    for domain, rules in _rules().items():
        folds = {t.source_topic: t for t in rules.tables}
        states: dict[tuple[str, Any], Any] = {}
        for raw in _raw_records(domain, rules):
            try:
                pending = list(rules.route(rules.process(raw, NOW), NOW))
            except RecordError:
                continue  # dead-lettered, bytes untouched: the dead-letter payload promises nothing more
            while pending:
                emit = pending.pop(0)
                out[emit.topic].append(emit)
                rule = folds.get(emit.topic)
                if rule is None:
                    continue
                value = None if emit.value is None else orjson.loads(encode_json(emit.value))
                try:
                    folded = rule.fold(states.get((emit.topic, emit.key)), value, NOW)
                except RecordError:
                    continue
                if folded.changed:
                    states[(emit.topic, emit.key)] = folded.state
                pending.extend(folded.emits)
    return out


def _strict(node: Any) -> Any:
    """The schema with every object that lists its properties closed to others: a field the code emits but the
    published schema does not name fails validation instead of passing as "additional"."""
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


@cache
def _document_resource(strict: bool) -> Resource[Any]:
    return DRAFT202012.create_resource(_strict(doc()) if strict else doc())


@cache
def payload_validator(name: str) -> jsonschema.Draft202012Validator:
    """Validates a JSON value against topic ``name``'s payload, its ``$ref``s resolved inside the document.

    Strictly (:func:`_strict`) where Switchyard builds the value; not where it passes upstream's bytes on
    untouched (``value: bytes``), whose models ignore fields upstream may add."""
    resource = _document_resource(catalog().get(name).value != "bytes")
    registry: Registry[Any] = _offline_registry().with_resource(DOC_URI, resource)
    pointer = f"{DOC_URI}#/components/messages/{channel_id(name)}/payload"
    if "schemaFormat" in doc()["components"]["messages"][channel_id(name)]["payload"]:
        pointer += "/schema"
    return jsonschema.Draft202012Validator(
        {"$ref": pointer}, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


def test_the_domains_emit_to_every_topic_they_send_to() -> None:
    """Coverage of the check below, and the converse of received_by: an output nobody writes is a stale entry."""
    for name, spec in catalog().topics.items():
        if spec.sent_by and spec.role in ("output", "snapshot", "feed", "unhandled"):
            assert emitted()[name], f"{name}: sent_by, but no rule emitted to it"
    assert emitted()["crm.commands"]


def test_every_emitted_value_matches_its_published_payload() -> None:
    cat = catalog()
    for name, emits in emitted().items():
        spec = cat.get(name)
        assert spec.sent_by, f"the rules emit to {name}, whose catalog entry has no sent_by"
        for emit in emits:
            if emit.value is None:
                assert spec.tombstones, f"{name}: tombstone emitted, catalog says tombstones: false"
                continue
            if spec.value == "avro":
                assert spec.schema_file is not None
                schema = catalog_schema(spec.schema_file)
                found, _ = decode_single_object(emit.value, {schema.fingerprint: schema})
                assert found.fingerprint == schema.fingerprint
                continue
            wire = emit.value if isinstance(emit.value, bytes) else encode_json(emit.value)
            errors = list(payload_validator(name).iter_errors(orjson.loads(wire)))
            assert not errors, f"{name}: {best_match(errors).json_path}: {best_match(errors).message[:300]}"


def test_the_payload_check_rejects_an_undocumented_field() -> None:
    """Guards the test above: a value with a field the published model does not name must fail."""
    (emit, *_) = emitted()["appointments.enriched"]
    assert payload_validator("appointments.enriched").is_valid(emit.value)
    assert not payload_validator("appointments.enriched").is_valid({**emit.value, "customer_name": "x"})
    assert not payload_validator("appointments.enriched").is_valid({**emit.value, "status": "LOST"})
