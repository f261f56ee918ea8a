#!/usr/bin/env python3
"""The Kafka image's readiness probe: the broker answers an ApiVersions request without error.

An open port is not enough: a KRaft broker binds its listeners before it is unfenced and serves requests only
after. ApiVersions v0 is the one request every Kafka version answers (clients negotiate with it). The address is
the argument, else the inter-broker listener from KAFKA_LISTENERS (a wildcard host means loopback). Exit 0 when
ready, 1 otherwise: what a Docker HEALTHCHECK wants. Standard library only: the image has no Python packages.
"""

from __future__ import annotations

import os
import socket
import struct
import sys

API_VERSIONS = 18
CORRELATION_ID = 0x5157


def address() -> tuple[str, int]:
    if len(sys.argv) > 1:
        host, port = sys.argv[1].rsplit(":", 1)
        return host, int(port)
    name = os.environ.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    for listener in os.environ.get("KAFKA_LISTENERS", "").split(","):
        scheme, _, hostport = listener.partition("://")
        if scheme == name:
            host, port = hostport.rsplit(":", 1)
            return (host if host not in ("", "0.0.0.0", "::") else "127.0.0.1"), int(port)
    raise SystemExit(f"no {name} listener in KAFKA_LISTENERS")


def read_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("connection closed mid-response")
        data += chunk
    return data


def ready(host: str, port: int) -> bool:
    client = b"kafka-ready"
    # Request header v1: api key, api version, correlation id, client id; ApiVersions v0 has no body.
    request = struct.pack(">hhih", API_VERSIONS, 0, CORRELATION_ID, len(client)) + client
    with socket.create_connection((host, port), timeout=4) as sock:
        sock.sendall(struct.pack(">i", len(request)) + request)
        (size,) = struct.unpack(">i", read_exactly(sock, 4))
        correlation, error = struct.unpack(">ih", read_exactly(sock, size)[:6])
    return correlation == CORRELATION_ID and error == 0


if __name__ == "__main__":
    try:
        sys.exit(0 if ready(*address()) else 1)
    except (OSError, ValueError, struct.error) as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        sys.exit(1)
