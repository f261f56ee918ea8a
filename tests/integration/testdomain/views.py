from app.core.runtime import Runtime, table_query

from .rules import public


def register(runtime: Runtime) -> None:
    table_query(runtime, "/api/testdomain/{id}", "testdomain", "totals", "id", render=public)
