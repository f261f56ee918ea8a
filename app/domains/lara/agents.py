"""Lära in the worker: stage one on ``lara.raw``, then the timeline, cycle and compliance folds.

At-least-once is enough (no ``exactly_once`` in the catalog): every event id is the content hash of type and
body, so a redelivered record is dropped by dedupe, and each fold is idempotent on its own (a timeline value
whose result is the stored state, a progress already tagged in its cycle, a compliance message whose revision or
``seq`` is not newer all change nothing), so a feed stretch re-read after a crash leaves the tables as they were.
"""

from app.core.runtime import Runtime
from app.domains.lara.rules import RULES


def register(runtime: Runtime) -> None:
    runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
