"""The topic catalog (``topics/catalog.yaml``), parsed: every topic's spec and the ``domains:`` section.

Code never spells a topic's Kafka name: it asks the catalog for a domain's raw or dead-letter topic by role, or
names a catalog entry (``crm.commands``, a domain's feed or output), and :meth:`Settings.topic` adds the
deployment's prefix. Creating the topics, and reporting drift without altering anything, is
:mod:`app.core.admin`'s.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, field_validator

from app.core.errors import ConfigError
from app.paths import TOPICS_DIR

if TYPE_CHECKING:
    from app.settings import Settings

Role = Literal["raw", "output", "snapshot", "feed", "deadletter", "unhandled", "commands"]

_DURATION = re.compile(r"^(\d+)([dhm])$")
_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000}


def duration_ms(text: str) -> int:
    """``7d`` / ``12h`` / ``30m`` -> milliseconds; ``infinite`` -> -1 (Kafka's "keep forever")."""
    if text == "infinite":
        return -1
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"retention {text!r} is not <n>d, <n>h, <n>m or 'infinite'")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


class TopicSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    domain: str
    role: Role
    key: str
    value: Literal["json", "avro", "bytes"]
    #: what the value is, in a sentence: the lead of the topic's AsyncAPI description
    description: str = ""
    #: JSON Schema (``.json``) or Avro (``.avsc``) file under ``schemas/`` describing the whole value
    schema_file: str | None = None
    #: ``module:Class`` of the pydantic model(s) of the value; several = any one of them (``anyOf``)
    model: tuple[str, ...] = ()
    #: header name -> what it carries (a list of names in YAML reads as names without a description)
    headers: dict[str, str] = {}
    #: which part of Switchyard produces to / consumes from the topic; unset = it does not. These are the
    #: ``send`` and ``receive`` operations of the AsyncAPI document
    sent_by: str | None = None
    received_by: str | None = None
    #: records without a value (Kafka tombstones) are published on it, e.g. on erasure
    tombstones: bool = False
    retention: str = "7d"
    cleanup: Literal["delete", "compact", "compact,delete"] = "delete"
    partitions: int | None = None

    @field_validator("model", mode="before")
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("headers", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        return dict.fromkeys(value, "") if isinstance(value, list | tuple) else value

    @property
    def compacted(self) -> bool:
        """Consumers are promised the latest value of each key, not every value in between."""
        return "compact" in self.cleanup

    def kafka_config(self) -> dict[str, str]:
        """The topic-level configs Switchyard owns (and checks for drift)."""
        cfg: dict[str, str] = {"cleanup.policy": self.cleanup}
        if self.cleanup != "compact":
            cfg["retention.ms"] = str(duration_ms(self.retention))
        return cfg


class DomainEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    package: str
    exactly_once: bool = False


@dataclass(frozen=True)
class Catalog:
    default_partitions: int
    domains: dict[str, DomainEntry]
    topics: dict[str, TopicSpec] = field(default_factory=dict)

    def get(self, name: str) -> TopicSpec:
        try:
            return self.topics[name]
        except KeyError:
            raise ConfigError(
                f"topic {name!r} is not in the catalog ({TOPICS_DIR / 'catalog.yaml'})"
            ) from None

    def compacted_topics(self) -> frozenset[str]:
        """Names of the topics that promise only each key's latest value (:attr:`TopicSpec.compacted`)."""
        return frozenset(t.name for t in self.topics.values() if t.compacted)

    def of_domain(self, domain: str, role: Role | None = None) -> list[TopicSpec]:
        return [t for t in self.topics.values() if t.domain == domain and (role is None or t.role == role)]

    def one(self, domain: str, role: Role) -> TopicSpec:
        found = self.of_domain(domain, role)
        if len(found) != 1:
            raise ConfigError(
                f"domain {domain!r} must have exactly one {role} topic in the catalog, has {len(found)}"
            )
        return found[0]

    def raw_topic(self, domain: str) -> TopicSpec:
        return self.one(domain, "raw")

    def deadletter_topic(self, domain: str) -> TopicSpec:
        return self.one(domain, "deadletter")

    def domain_of_topic(self, name: str) -> str:
        return self.get(name).domain


def _read(path: Path) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read topic catalog {path}: {exc}") from exc
    return doc


def load_catalog(path: Path | None = None, extra: Sequence[Path] = ()) -> Catalog:
    """The catalog at ``path`` (``topics/catalog.yaml`` by default), joined by the domains and topics of every
    ``extra`` file (:attr:`Settings.extra_catalogs`). The main file's defaults hold; a name declared twice is a
    configuration error, never a silent override."""
    path = path or TOPICS_DIR / "catalog.yaml"
    doc = _read(path)
    defaults = doc.get("defaults", {})
    domains: dict[str, DomainEntry] = {}
    topics: dict[str, TopicSpec] = {}
    for source, part in ((path, doc), *((p, _read(p)) for p in extra)):
        for name, d in (part.get("domains") or {}).items():
            if name in domains:
                raise ConfigError(f"domain {name!r} of {source} is already in the catalog")
            domains[name] = DomainEntry(name=name, **(d or {}))
        for name, spec in (part.get("topics") or {}).items():
            if name in topics:
                raise ConfigError(f"topic {name!r} of {source} is already in the catalog")
            spec = dict(spec)
            if "schema" in spec:
                spec["schema_file"] = spec.pop("schema")
            spec.setdefault("retention", defaults.get("retention", "7d"))
            spec.setdefault("cleanup", defaults.get("cleanup", "delete"))
            topics[name] = TopicSpec(name=name, **spec)
    return Catalog(default_partitions=int(defaults.get("partitions", 6)), domains=domains, topics=topics)


def catalog_of(settings: Settings) -> Catalog:
    """The catalog a deployment runs on: its ``catalog_file`` and ``extra_catalogs``."""
    return load_catalog(settings.catalog_file, settings.extra_catalog_files)


@cache
def catalog() -> Catalog:
    """The project's catalog, parsed once per process."""
    return load_catalog()
