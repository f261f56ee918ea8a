"""Pismo in the worker: the audit trail's stage one runs exactly-once, the ``phases`` table at-least-once.

Compliance reads ``audit.migration`` with ``read_committed`` and must see every accepted result once, so stage
one is the transactional stage (outputs, dead letters, dedupe marks and input offsets in one Kafka transaction)
whenever the catalog marks the domain ``exactly_once``; otherwise it falls back to the generic stage one.

The ``phases`` fold is Faust's ordinary agent and may see a feed value twice (a redelivery, or a value of a
transaction that was aborted and then redone). That is harmless by construction: every feed value names its raw
partition and offset, and :func:`~app.domains.pismo.state.fold_phase` ignores offsets at or below the partition's
high-water mark, which the transactional stage keeps rising because it redoes a raw partition in offset order.
"""

from __future__ import annotations

from app.core.eos import TransactionalStage
from app.core.runtime import Runtime
from app.domains.pismo.rules import RULES


def register(runtime: Runtime) -> None:
    if runtime.catalog.domains[RULES.name].exactly_once:
        TransactionalStage(runtime, RULES).register()
    else:
        runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
