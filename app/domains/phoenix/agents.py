"""Phoenix in the worker: the raw bus topic through stage one, then both table folds.

Phoenix is at-least-once (not ``exactly_once`` in the catalog): the folds keep only each appointment's latest
version, so a redelivery after a crash cannot double-count, and the cheaper stage one is enough.
"""

from app.core.runtime import Runtime
from app.domains.phoenix.rules import RULES


def register(runtime: Runtime) -> None:
    runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
