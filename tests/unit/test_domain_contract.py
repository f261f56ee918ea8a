"""The domain contract (issue 21): a domain is its folder plus its catalog entries, and nothing else names it.

Three things are held here. Every harness (the worker's discovery, the CLI, the demo, ``asyncapi``, the bench,
the reliability mix, the hostile fuzzer) is free of domain names: no import of a domain package, no string that
names a catalog domain, read from the source's syntax tree (docstrings and comments may give examples). Every
catalog domain exports its :class:`~app.core.domain.Domain` and the worker's import path never reaches a traffic
module. And the test-only domain of ``tests/integration/testdomain``, added with an extra catalog file, is
picked up by the harnesses as the sixth domain without a line outside its folder.
"""

from __future__ import annotations

import ast
import random
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.asyncapi import document
from app.core.catalog import Catalog, load_catalog
from app.core.domain import Domain, domains, load_domain
from app.core.errors import ConfigError
from app.core.traffic import TrafficRecord
from app.paths import ROOT
from app.settings import Settings

SIXTH = ROOT / "tests" / "integration" / "testdomain" / "catalog.yaml"
#: not a harness of the catalog's domains: the recovery bench measures a table of the test-only domain, alone on
#: that domain's own catalog file
OWN_DOMAIN = {"bench/recovery.py"}
#: the modules that run every domain: none may name one
HARNESSES = tuple(
    path
    for path in (
        "app/main.py",
        "app/cli.py",
        "app/demo.py",
        "app/asyncapi.py",
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "app" / "core").rglob("*.py"))),
        *(str(p.relative_to(ROOT)) for p in sorted((ROOT / "bench").glob("*.py"))),
        "tests/reliability/load.py",
        "tests/reliability/hostile.py",
    )
    if path not in OWN_DOMAIN
)


def with_sixth() -> Catalog:
    return load_catalog(None, [SIXTH])


def _names(catalog: Catalog) -> set[str]:
    return set(catalog.domains)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string nodes that are docstrings (of the module, a class or a function)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def domain_mentions(source: str, names: set[str]) -> list[str]:
    """Where ``source`` names a domain: an import of a domain package, or a string constant (not a docstring)
    holding a domain's name as a word or a topic of it."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    word = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names))) + r")\b")
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            out += [f"line {node.lineno}: import {m}" for m in modules if m.startswith("app.domains.")]
        text = node.value if isinstance(node, ast.Constant) and id(node) not in docs else None
        if isinstance(text, str) and word.search(text):
            out.append(f"line {getattr(node, 'lineno', '?')}: {text[:60]!r}")
    return out


@pytest.mark.parametrize("path", HARNESSES)
def test_no_harness_names_a_domain(path: str) -> None:
    found = domain_mentions((ROOT / path).read_text(), _names(with_sixth()))
    assert found == [], f"{path} names a domain: {found}"


def test_the_scan_finds_a_named_domain() -> None:
    """Guards the test above against passing vacuously."""
    names = _names(with_sixth())
    assert domain_mentions("from app.domains.vome.rules import RULES\n", names)
    assert domain_mentions('TOPIC = "phoenix.raw"\n', names)
    assert domain_mentions('x = {"pismo": 2500}\n', names)
    assert domain_mentions('SCENARIOS["testdomain"]\n', names)
    assert not domain_mentions('"""Phoenix, pismo and the rest: examples in a docstring."""\n', names)
    assert not domain_mentions('code = "LARA-1003"\n', names)


def test_every_catalog_domain_exports_its_domain_object() -> None:
    cat = with_sixth()
    found = domains(cat)
    assert [d.name for d in found] == list(cat.domains)
    for d in found:
        assert isinstance(d, Domain)
        assert d.traffic is not None, f"{d.name}: no traffic source, so no harness can run it"
        assert cat.raw_topic(d.name) and cat.deadletter_topic(d.name)
        assert {t.source_topic for t in d.tables} <= set(cat.topics), d.name


def test_an_unknown_or_misnamed_domain_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown domain"):
        load_domain(load_catalog(), "nosuch")
    wrong = tmp_path / "catalog.yaml"
    wrong.write_text("domains:\n  other: {package: tests.integration.testdomain}\n")
    with pytest.raises(ConfigError, match="the catalog calls it 'other'"):
        load_domain(load_catalog(None, [wrong]), "other")


def test_an_extra_catalog_cannot_redeclare_a_domain_or_a_topic(tmp_path: Path) -> None:
    twice = tmp_path / "catalog.yaml"
    twice.write_text("domains:\n  vome: {package: app.domains.vome}\n")
    with pytest.raises(ConfigError, match="already in the catalog"):
        load_catalog(None, [twice])
    twice.write_text("topics:\n  vome.raw: {domain: vome, role: raw, key: k, value: json}\n")
    with pytest.raises(ConfigError, match="already in the catalog"):
        load_catalog(None, [twice])


def test_extra_catalogs_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.core.catalog import catalog_of

    monkeypatch.setenv("SWITCHYARD_EXTRA_CATALOGS", f"{SIXTH}, ")
    assert Settings().extra_catalog_files == (SIXTH,)
    assert list(catalog_of(Settings()).domains)[-1] == "testdomain"
    monkeypatch.delenv("SWITCHYARD_EXTRA_CATALOGS")
    assert "testdomain" not in catalog_of(Settings()).domains


def test_the_worker_never_imports_a_traffic_module() -> None:
    """What the worker imports of the domains (their packages and views) leaves every traffic source out."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from app.core.catalog import load_catalog\n"
        "from app.core.domain import domains\n"
        f"ds = domains(load_catalog(None, [Path({str(SIXTH)!r})]))\n"
        "import importlib\n"
        "[importlib.import_module(d.views) for d in ds if d.views]\n"
        "print(sorted(d.traffic for d in ds if d.traffic in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_every_traffic_source_speaks_the_one_protocol() -> None:
    """One record type, outcomes that agree with the rules: what the generator says must become of a record is
    what the domain's pure rules do with it (an oracle built on a wrong label would judge nothing)."""
    from app.core.errors import RecordError
    from app.core.records import RawRecord

    now = datetime(2025, 6, 2, 12, tzinfo=UTC)
    for d in domains(with_sixth()):
        traffic = d.traffic_source().generate(random.Random(3), 60, now)
        assert len(traffic.records) >= 30, d.name
        assert all(isinstance(r, TrafficRecord) for r in traffic.records)
        outcomes = {r.outcome for r in traffic.records}
        assert "accepted" in outcomes, d.name
        for r in traffic.records:
            raw = RawRecord(r.value, r.key, r.headers, f"{d.name}.raw")
            try:
                d.rules.process(raw, now)
            except RecordError as err:
                assert (r.outcome, r.code) == ("dead-lettered", err.code), (d.name, r.label)
            else:
                assert r.outcome != "dead-lettered", (d.name, r.label, r.code)
        assert d.traffic_source().documents(random.Random(3)), d.name


def test_a_sixth_domain_joins_the_bench_the_mix_and_the_asyncapi_document() -> None:
    from bench.scenarios import scenarios
    from tests.reliability.load import Mix

    cat = with_sixth()
    bench = scenarios(cat)
    assert list(bench) == list(cat.domains)
    assert bench["testdomain"].generate(random.Random(1), 50)
    assert bench["testdomain"].primary_topics == ("testdomain.out",)
    mix = Mix.make(seed=1, catalog=cat)
    assert list(mix.traffic) == list(cat.domains)
    (chunk,) = mix.chunks(1)
    assert len(chunk["testdomain"]) == len(mix.traffic["testdomain"].records) > 0
    doc = document(cat, Settings(broker="", topic_prefix="", security_protocol="PLAINTEXT"))
    assert {c["address"] for c in doc["channels"].values()} == set(cat.topics)
    assert {"Thing", "Total"} <= doc["components"]["schemas"].keys()


def test_every_domain_builds_crm_commands_with_the_one_idempotency_rule() -> None:
    """Both sources name themselves in the key: an event id is unique only within its upstream."""
    from app.domains.appointments.crm import SOURCE as APPOINTMENTS
    from app.domains.appointments.crm import crm_commands
    from app.domains.vome.crm import SOURCE as VOME
    from app.domains.vome.crm import commands_for
    from app.sinks.crm.commands import command_id

    when = "2025-06-02T12:00:00+00:00"
    appointment = {
        "event_id": "e1",
        "updated_at": when,
        "customer": {"email": "a@example.org"},
        "start": when,
        "end": when,
        "status": "ACCEPTED",
        "event_type": "ACCEPT",
        "meeting_type": "VIDEO",
        "appointment_id": "apt-1",
    }
    built = [*crm_commands(appointment)]
    vome = {"event_id": "e1", "trigger": "profile.archived", "user_id": "a@example.org", "data": {}}
    built += commands_for(vome, datetime(2025, 6, 2, tzinfo=UTC))
    for c in built:
        assert c.command_id == command_id(c.source, c.source_event_id, c.op, c.contact_id)
    assert {c.source for c in built} == {APPOINTMENTS, VOME}
    assert command_id(APPOINTMENTS, "e1", "contact.upsert", "x") != command_id(
        VOME, "e1", "contact.upsert", "x"
    )
