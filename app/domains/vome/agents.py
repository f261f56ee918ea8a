"""Vome in the worker: stage one on ``vome.raw``, then the ``volunteers`` fold.

At-least-once is enough (no ``exactly_once`` in the catalog): the event id is the hash of trigger and body, so a
redelivered webhook is dropped by dedupe, and the fold sets values by entity id, so replaying a feed value after a
crash leaves the table as it was.
"""

from app.core.runtime import Runtime
from app.domains.vome.rules import RULES


def register(runtime: Runtime) -> None:
    runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
