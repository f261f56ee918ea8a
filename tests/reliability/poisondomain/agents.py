from app.core.eos import TransactionalStage
from app.core.runtime import Runtime

from .rules import RULES


def register(runtime: Runtime) -> None:
    if runtime.catalog.domains[RULES.name].exactly_once:
        TransactionalStage(runtime, RULES).register()
    else:
        runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
