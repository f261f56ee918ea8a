"""The worker runtime: the one package that imports Faust (and mode), enforced by import-linter (pyproject).

Everything else (domains' views, the webhook ingress, the CRM sink, :mod:`app.main`) goes through what is
re-exported here: :class:`Runtime` (topics, producing, tables, HTTP pages, background tasks, shutdown hooks),
:func:`build_faust_app`, the table query and auth helpers, and the monitor. Faust's private internals are
touched in :mod:`.internals`, :class:`.worker.TableIO`, :mod:`.tablestore`, :mod:`.fetchguard` and :mod:`.recovery`
only, each
naming the faust-streaming version it was checked against; ``tests/unit/test_runtime_internals.py`` fails if
one moves.

Modules: :mod:`.worker` (the runtime and the at-least-once agents), :mod:`.eos` (the exactly-once stage),
:mod:`.faustapp` (the ``faust.App``), :mod:`.fetchguard` (the guarded consumer), :mod:`.recovery` (table recovery
and standbys a fetched changelog run at a time), :mod:`.tablestore` (RocksDB stores on one memory budget), :mod:`.web` (health, metrics, table queries), :mod:`.monitor` (polled gauges).
"""

from app.core.runtime.faustapp import build_faust_app
from app.core.runtime.monitor import install_monitor
from app.core.runtime.web import authorized, post_page, register_core_views, table_query
from app.core.runtime.worker import DomainTable, Runtime, TableIO, run_worker

__all__ = [
    "DomainTable",
    "Runtime",
    "TableIO",
    "authorized",
    "build_faust_app",
    "install_monitor",
    "post_page",
    "register_core_views",
    "run_worker",
    "table_query",
]
