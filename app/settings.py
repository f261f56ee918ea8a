"""The worker's and the CLI's settings. Built once (``Settings()`` reads ``SWITCHYARD_*`` from the environment),
frozen, and passed to whatever needs it.

Two readers of the environment stand outside it, on purpose: the embedded broker (:mod:`app.broker`) reads
``SWITCHYARD_KAFKA_VERSION`` (it is a development tool started before any settings exist, and the Kafka image
build follows the same variable), and the bench (``bench/harness.py``) reads ``SWITCHYARD_BROKER`` to run
against an external broker instead of starting one. This module imports nothing else of the app but
:mod:`app.paths` (import-linter holds that: core builds on settings, not the other way round).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.paths import STATE_DIR, TOPICS_DIR


@dataclass(frozen=True, slots=True)
class RateWindow:
    """At most ``limit`` calls in any ``seconds``."""

    limit: int
    seconds: float

    def __str__(self) -> str:
        return f"{self.limit}/{self.seconds:g}s"


_WINDOW = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_windows(text: str) -> tuple[RateWindow, ...]:
    """``"100/10s,100/60s"`` -> the windows; a ValueError naming the part that is not ``<calls>/<seconds>[unit]``
    (units ``ms``, ``s``, ``m``, ``h``; seconds when omitted) or that has no calls or no time."""
    out: list[RateWindow] = []
    for part in text.split(","):
        m = _WINDOW.match(part)
        if not m:
            raise ValueError(f"rate-limit window {part.strip()!r} is not <calls>/<seconds>[ms|s|m|h]")
        window = RateWindow(int(m.group(1)), float(m.group(2)) * _UNIT[m.group(3) or "s"])
        if window.limit < 1 or window.seconds <= 0:
            raise ValueError(f"rate-limit window {part.strip()!r} needs at least 1 call and a time above 0")
        out.append(window)
    return tuple(out)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", frozen=True, extra="ignore")

    # --- Kafka -------------------------------------------------------------------------------------------------
    broker: str = Field(
        "", description="bootstrap servers host:port[,host:port]; empty = start the embedded broker"
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: SecretStr = SecretStr("")
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    topic_prefix: str = Field(
        "", description="prepended to every catalog topic name (tests, shared clusters)"
    )
    topic_partitions: int = Field(6, ge=1)
    topic_replication: int = Field(1, ge=1, description="3 in production, 1 on a single-node broker")
    app_id: str = "switchyard"
    catalog_file: Path = Field(
        TOPICS_DIR / "catalog.yaml", description="the topic catalog (topics/catalog.yaml)"
    )
    extra_catalogs: str = Field(
        "",
        description="comma-separated catalog files whose domains and topics join catalog_file's (a test-only"
        " domain riding along with the real ones)",
    )

    # --- worker ------------------------------------------------------------------------------------------------
    store: str = Field("rocksdb://", description="table store URL: rocksdb:// (production) or memory://")
    table_memory_mb: int = Field(
        128,
        ge=0,
        description="RocksDB memory shared by every table partition of this worker (block cache, memtables"
        " charged to it); 0 = Faust's defaults (a 2 GB cache and 3 x 64 MB memtables per partition)",
    )
    data_dir: Path = STATE_DIR / "data"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    worker_id: str = Field(
        "", description="stable id of this worker (StatefulSet pod name); default host-pid"
    )
    api_token: SecretStr | None = Field(None, description="bearer token required by /api/* when set")
    dedupe_ttl_seconds: int = Field(7 * 24 * 3600, ge=60)
    domains: str = Field(
        "", description="comma-separated domains to run (empty = every domain in the catalog)"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    session_timeout_seconds: float = Field(
        20.0,
        gt=0,
        description="a worker that stops heartbeating leaves the group after this (fail-over time)",
    )
    heartbeat_interval_seconds: float = Field(
        2.0, gt=0, description="consumer heartbeat; well under the timeout"
    )
    standby_replicas: int = Field(
        1, ge=0, description="warm table copies on other workers (faster fail-over)"
    )
    producer_compression: Literal["none", "gzip", "snappy", "lz4", "zstd"] = Field(
        "none",
        description="compression of every record batch the worker produces. none is Kafka's, Faust's and Quix "
        "Streams' default: lz4 cost the worker 5-29 % more CPU per event in drains run side by side (Phoenix, "
        "Lära), to save bytes between the worker and the broker; lz4 or zstd where those bytes cost more",
    )

    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="allocations between young-generation garbage collections (Python's default is 700; 0 "
        "keeps the interpreter's thresholds and does not freeze the start-up heap). A batch in flight holds "
        "thousands of objects: at 700 they survive into the old generations, whose collections scan the whole "
        "heap, stall the event loop for up to a few hundred ms and cost about a fifth of the worker's CPU",
    )

    max_record_bytes: int = Field(
        1_000_000,
        ge=64 * 1024,
        description="the largest record the worker produces (key, value and headers, with Kafka's framing): an "
        "output or table state over it dead-letters its record as OUTPUT-TOO-LARGE, where the producer would "
        "refuse the whole batch; a dead letter over it leaves out the record's value (header "
        "switchyard.error.omitted). Faust's default; keep it at or under the broker's message.max.bytes",
    )

    def producer_options(self) -> dict[str, Any]:
        """What every producer of the worker adds to :meth:`kafka_client_options`."""
        return {
            "compression_type": None if self.producer_compression == "none" else self.producer_compression,
            "max_request_size": self.max_record_bytes,
        }

    # --- dead letters ------------------------------------------------------------------------------------------
    dlq_max_replays: int = Field(
        3, ge=1, description="a record replayed this many times is not replayed again"
    )

    # --- webhooks ----------------------------------------------------------------------------------------------
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 secret; signatures required when set"
    )
    webhook_max_bytes: int = 512 * 1024

    # --- Avro --------------------------------------------------------------------------------------------------
    schema_registry_url: str = Field(
        "", description="Confluent wire format when set, else single-object encoding"
    )

    # --- CRM ---------------------------------------------------------------------------------------------------
    crm_base_url: str = "http://127.0.0.1:8089"
    crm_token: SecretStr = SecretStr("switchyard-dev-token")
    crm_rate_limit_calls: int = Field(100, ge=1)
    crm_rate_limit_window_seconds: float = Field(60.0, gt=0)
    crm_rate_limits: str = Field(
        "",
        description="several call budgets at once, e.g. '100/10s,100/60s' (every one is kept); when set it "
        "replaces crm_rate_limit_calls per crm_rate_limit_window_seconds",
    )
    crm_batch_size: int = Field(100, ge=1, le=100)
    crm_timeout_seconds: float = 10.0
    crm_backoff_cap_seconds: float = Field(
        30.0, gt=0, description="longest wait between retries of a failing call"
    )
    crm_breaker_reset_seconds: float = Field(
        10.0, gt=0, description="open circuit breaker waits this before a probe"
    )
    crm_enabled: bool = True

    @field_validator("crm_rate_limits")
    @classmethod
    def _windows(cls, value: str) -> str:
        if value.strip():
            parse_windows(value)
        return value

    @property
    def crm_rate_windows(self) -> tuple[RateWindow, ...]:
        """Every call budget of the CRM token (one unless ``crm_rate_limits`` names several)."""
        if self.crm_rate_limits.strip():
            return parse_windows(self.crm_rate_limits)
        return (RateWindow(self.crm_rate_limit_calls, self.crm_rate_limit_window_seconds),)

    def topic(self, name: str) -> str:
        """The real Kafka topic of catalog name ``name``."""
        return f"{self.topic_prefix}{name}"

    @property
    def extra_catalog_files(self) -> tuple[Path, ...]:
        return tuple(Path(p.strip()) for p in self.extra_catalogs.split(",") if p.strip())

    @property
    def domain_filter(self) -> frozenset[str]:
        return frozenset(d.strip() for d in self.domains.split(",") if d.strip())

    def kafka_client_options(self) -> dict[str, object]:
        """aiokafka connection options (bootstrap + security) shared by every client the project opens."""
        opts: dict[str, object] = {
            "bootstrap_servers": self.broker,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol.startswith("SASL"):
            opts.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password.get_secret_value(),
            )
        if self.security_protocol.endswith("SSL"):
            from aiokafka.helpers import create_ssl_context

            opts["ssl_context"] = create_ssl_context(
                cafile=str(self.ssl_cafile) if self.ssl_cafile else None,
                certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            )
        return opts
