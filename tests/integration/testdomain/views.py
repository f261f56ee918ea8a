from app.core.runtime import Runtime, table_query

from .rules import ROW_PATH, TABLE, public


def register(runtime: Runtime) -> None:
    table_query(runtime, ROW_PATH, "testdomain", TABLE, "id", render=public)
