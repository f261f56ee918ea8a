"""An OTLP/HTTP endpoint that accepts spans and drops them: what ``switchyard bench --trace-sample`` exports to.

The worker under measurement pays everything tracing costs it (spans, W3C headers on every output, the batch
processor, protobuf encoding, the HTTP POST); what a backend then does with the spans is the backend's CPU, not the
worker's, so none is run. The sink counts what it received, so a run shows that spans did flow.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class OtlpSink:
    """``endpoint`` is the value of ``OTEL_EXPORTER_OTLP_ENDPOINT``; ``requests``/``bytes`` what arrived."""

    def __init__(self) -> None:
        sink = self
        self.requests = 0
        self.bytes = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sink.requests += 1
                sink.bytes += len(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse: all accepted
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-sink", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
