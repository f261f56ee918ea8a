from app.core.runtime import Runtime

from .rules import RULES


def register(runtime: Runtime) -> None:
    runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
