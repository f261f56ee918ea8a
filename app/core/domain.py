"""The domain contract: what a package under ``app/domains/`` hands the rest of Switchyard, in one object.

Every domain package exports ``DOMAIN``, a :class:`Domain`, and the catalog's ``domains:`` section names the
package. The worker, the CLI (``check``, ``produce``, ``demo``), ``asyncapi``, the bench and the test harnesses
all iterate :func:`domains` and ask the object; none of them names a domain, so a sixth domain is its folder
plus its catalog entries. Core imports no domain: packages are found by the name the catalog gives them.

The HTTP views and the traffic source are named by module path and imported only when asked for: views pull in
the runtime (and Faust), and the traffic source (generators, reference folds) is never imported by a worker.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.catalog import Catalog
from app.core.errors import ConfigError
from app.core.records import DomainRules, Sample, TableRule

if TYPE_CHECKING:
    from app.core.runtime import Runtime
    from app.core.traffic import TrafficSource


@dataclass(frozen=True)
class Domain:
    """One upstream system: its pure rules (stage one, the table folds, samples, ``produce``'s key), and where
    its HTTP views (``register(runtime)``) and its traffic source (``TRAFFIC``) live."""

    rules: DomainRules
    #: module with ``register(runtime: Runtime) -> None`` adding the domain's HTTP endpoints; None: it has none
    views: str | None = None
    #: module with ``TRAFFIC: TrafficSource``; the worker never imports it
    traffic: str | None = None

    @property
    def name(self) -> str:
        return self.rules.name

    @property
    def tables(self) -> Sequence[TableRule]:
        return self.rules.tables

    def samples(self) -> Sequence[Sample]:
        return self.rules.samples()

    def register_views(self, runtime: Runtime) -> None:
        if self.views is not None:
            importlib.import_module(self.views).register(runtime)

    def traffic_source(self) -> TrafficSource:
        if self.traffic is None:
            raise ConfigError(f"domain {self.name!r} names no traffic source")
        source: TrafficSource = importlib.import_module(self.traffic).TRAFFIC
        return source


def load_domain(catalog: Catalog, name: str) -> Domain:
    """The ``DOMAIN`` of the package the catalog names for ``name``."""
    try:
        entry = catalog.domains[name]
    except KeyError:
        raise ConfigError(f"unknown domain {name!r}; known: {', '.join(catalog.domains)}") from None
    found = getattr(importlib.import_module(entry.package), "DOMAIN", None)
    if not isinstance(found, Domain):
        raise ConfigError(f"package {entry.package} (domain {name!r}) exports no DOMAIN")
    if found.name != name:
        raise ConfigError(
            f"package {entry.package} exports domain {found.name!r}, the catalog calls it {name!r}"
        )
    return found


def domains(catalog: Catalog) -> list[Domain]:
    """Every catalog domain, in catalog order."""
    return [load_domain(catalog, name) for name in catalog.domains]
