"""A schema registry for tests: the two endpoints of Confluent's REST API that Switchyard and its readers use.

``POST /subjects/<subject>/versions`` registers a schema and answers its id (the same schema text keeps its id,
as the real registry does); ``GET /schemas/ids/<id>`` gives the schema back, which is how a reader of the
Confluent framing finds the writer schema. ``fail_with`` makes every call answer that status instead. It runs
on a free loopback port in a thread, so both a worker subprocess and the test can reach it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


class TestRegistry:
    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}  # schema text -> id
        self.subjects: dict[str, list[int]] = {}
        self.fail_with: int | None = None
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                parts = self.path.strip("/").split("/")
                if registry.fail_with is not None:
                    return self._answer(registry.fail_with, {"error_code": registry.fail_with})
                if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
                    return self._answer(404, {"error_code": 404, "message": "not found"})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                schema = body["schema"]
                schema_id = registry.ids.setdefault(schema, len(registry.ids) + 1)
                versions = registry.subjects.setdefault(parts[1], [])
                if schema_id not in versions:
                    versions.append(schema_id)
                return self._answer(200, {"id": schema_id})

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                by_id = {i: s for s, i in registry.ids.items()}
                if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and int(parts[2]) in by_id:
                    return self._answer(200, {"schema": by_id[int(parts[2])]})
                return self._answer(404, {"error_code": 40403, "message": "Schema not found"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> TestRegistry:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.shutdown()
        self.server.server_close()
