"""The one exception tree of Switchyard.

Every error raised on purpose derives from :class:`SwitchyardError`. Errors about a record carry what the
dead-letter path needs (stage, stable code, JSON-pointer path), and every error says whether retrying the same
work can succeed (``retriable``, as aiokafka does), so callers decide between retry and dead-letter without
matching on types::

    SwitchyardError
    ├── RecordError                 one record cannot be processed; it is dead-lettered, the stream goes on
    │   ├── DecodeError             bytes are not what the topic promises (stage=decode, DECODE-*)
    │   ├── ValidationFailed        decoded, but breaks the domain contract (stage=validate, SCHEMA-*, LARA-*)
    │   ├── EnrichError             valid, but enrichment cannot be computed (stage=enrich, ENRICH-*)
    │   │   └── OutputTooLarge      an output or table state over the record size limit (OUTPUT-TOO-LARGE)
    │   └── SinkRefused             a sink refused this record for good (stage=sink, CRM-<status>)
    ├── SinkError                   a downstream system failed (stage=sink)
    │   ├── RetriableSinkError      try again later: 5xx, timeouts, connection refused (retriable)
    │   │   └── BackpressureError   the sink is saturated or rate limited: slow down, then retry
    │   └── PermanentSinkError      the sink refused the command for good (4xx): dead-letter it
    ├── ConfigError                 settings or catalog are wrong; raised at start-up, never mid-stream
    └── BrokerError                 the embedded broker could not be fetched, started or stopped

Messages never contain record values: dead-letter headers and logs are read by people who must not see the
personal data some records carry. Put the field *path* and the *rule* in the message, never the input.
"""

from __future__ import annotations

from typing import TypeVar

E = TypeVar("E", bound=BaseException)


class SwitchyardError(Exception):
    """Root of the tree above."""

    code: str = "SWITCHYARD"
    retriable: bool = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class RecordError(SwitchyardError):
    """A record that cannot be processed. Carries everything the dead-letter headers need."""

    stage: str = "decode"

    def __init__(self, message: str, *, code: str | None = None, path: str = "") -> None:
        super().__init__(message, code=code)
        self.path = path

    def as_dict(self) -> dict[str, str]:
        """The shape ``switchyard check`` prints and tests compare against."""
        return {"stage": self.stage, "code": self.code, "message": self.message, "path": self.path}

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"{self.code}{where}: {self.message}"


class DecodeError(RecordError):
    stage = "decode"
    code = "DECODE-JSON"


class ValidationFailed(RecordError):
    stage = "validate"
    code = "SCHEMA-INVALID"


class EnrichError(RecordError):
    stage = "enrich"
    code = "ENRICH-FAILED"


class OutputTooLarge(EnrichError):
    """What a record became (an output, or its key's table state) is bigger than the largest record the worker
    produces (``SWITCHYARD_MAX_RECORD_BYTES``). Caught in the step, it dead-letters the one record; at the producer
    it would fail the whole batch."""

    code = "OUTPUT-TOO-LARGE"


class SinkRefused(RecordError):
    """The record-level face of a :class:`PermanentSinkError`: what the sink's dead-letter path writes."""

    stage = "sink"
    code = "SINK-PERMANENT"


class SinkError(SwitchyardError):
    stage: str = "sink"
    code = "SINK-FAILED"


class RetriableSinkError(SinkError):
    retriable = True
    code = "SINK-RETRIABLE"

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BackpressureError(RetriableSinkError):
    code = "SINK-BACKPRESSURE"


class PermanentSinkError(SinkError):
    code = "SINK-PERMANENT"

    def __init__(
        self, message: str, *, code: str | None = None, status: int | None = None, body: str = ""
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.body = body


class ConfigError(SwitchyardError):
    code = "CONFIG"


class BrokerError(SwitchyardError):
    code = "BROKER"


def detached(err: E) -> E:
    """``err`` with the tracebacks of it and of the exceptions behind it dropped, for an error that outlives the
    ``except`` that caught it (a dead letter waiting for its batch to be produced).

    A traceback holds the frames it passed through, and those frames hold their locals: in a stage that is the
    batch, the step and its list of rejected records, which holds the error again. That cycle is freed only by the
    garbage collector, so every batch with a dead letter (records, emits and decoded models alike) stayed in memory
    until the next collection: most of an appointments worker's peak RSS. The error's code, stage, path and message
    are all a dead letter needs.
    """
    pending: list[BaseException] = [err]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.__traceback__ = None
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return err
