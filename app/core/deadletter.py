"""The one dead-letter path: build the record (pure) and publish it; list and replay dead letters.

A dead-letter record is the original record, untouched (value bytes, key, headers), plus the error headers of
ARCHITECTURE.md. Replay sends it back to ``switchyard.source.topic`` with the error headers removed and
``switchyard.replay.count`` incremented; a record already replayed ``max_replays`` times is refused, so a record
that keeps failing cannot loop forever.

A dead letter must fit the producer's record limit like any record: a raw record just under the broker's own limit
plus the error headers may not. Such a dead letter leaves out the value (then, if need be, the original headers and
the key) and says so in ``switchyard.error.omitted`` (:func:`fitted`); the record itself stays at its source
position until that topic's retention removes it. Sending it whole would fail its batch, and every retry with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from app import __version__
from app.core.clock import iso
from app.core.errors import RecordError
from app.core.records import Headers, RawRecord, record_size

ERROR_PREFIX = "switchyard.error."
STAGE = "switchyard.error.stage"
CODE = "switchyard.error.code"
MESSAGE = "switchyard.error.message"
PATH = "switchyard.error.path"
SOURCE_TOPIC = "switchyard.source.topic"
SOURCE_PARTITION = "switchyard.source.partition"
SOURCE_OFFSET = "switchyard.source.offset"
FAILED_AT = "switchyard.failed.at"
APP_VERSION = "switchyard.app.version"
REPLAY_COUNT = "switchyard.replay.count"
#: The trace id (32 hex digits) of the hop that dead-lettered the record: find its ERROR span in the tracing
#: backend. Under the error prefix, so a replay drops it (the replayed record continues the trace through the
#: ``traceparent`` it keeps).
TRACE_ID = "switchyard.error.trace-id"
#: What a dead letter left out to fit the record limit, with the bytes each part had: ``value:1040000`` or
#: ``value:1040000,headers:20000,key:9000``. Absent when the dead letter is whole. Replay refuses such a dead letter.
OMITTED = "switchyard.error.omitted"

DLQ_HEADERS = (
    STAGE,
    CODE,
    MESSAGE,
    PATH,
    SOURCE_TOPIC,
    SOURCE_PARTITION,
    SOURCE_OFFSET,
    FAILED_AT,
    APP_VERSION,
)
_MAX_MESSAGE = 500

log = logging.getLogger("switchyard.deadletter")


def error_headers(raw: RawRecord, err: RecordError, now: datetime) -> Headers:
    return (
        (STAGE, err.stage.encode()),
        (CODE, err.code.encode()),
        (MESSAGE, err.message[:_MAX_MESSAGE].encode()),
        (PATH, err.path.encode()),
        (SOURCE_TOPIC, raw.topic.encode()),
        (SOURCE_PARTITION, str(raw.partition).encode()),
        (SOURCE_OFFSET, str(raw.offset).encode()),
        (FAILED_AT, iso(now).encode()),
        (APP_VERSION, __version__.encode()),
    )


def deadletter_headers(raw: RawRecord, err: RecordError, now: datetime, trace: Headers = ()) -> Headers:
    """Original headers first (untouched, in order), then the error headers; with ``trace`` (the W3C headers of
    the span that dead-lettered the record, when tracing is on) those follow, and the trace id header."""
    headers = tuple(raw.headers) + error_headers(raw, err, now)
    if not trace:
        return headers
    return (*headers, *trace, (TRACE_ID, trace_id_of(trace).encode()))


def fitted(raw: RawRecord, headers: Headers, limit: int | None) -> tuple[bytes | None, bytes | None, Headers]:
    """The key, value and headers of ``raw``'s dead letter (``headers`` from :func:`deadletter_headers`), within
    ``limit`` bytes (:func:`~app.core.records.record_size`; no limit when ``None``). Over it, the dead letter leaves
    out the value, then the original headers, then the key, until it fits, and names what it left out in
    :data:`OMITTED`. The error headers always stay: they say what failed and where the record is."""
    key, value = raw.key, raw.value
    if limit is None or record_size(key, value, headers) <= limit:
        return key, value, headers
    left_out = {"value": len(value or b"")}
    added = headers[len(raw.headers) :]

    def noted(kept: Headers) -> Headers:
        return (*kept, (OMITTED, ",".join(f"{part}:{n}" for part, n in left_out.items()).encode()))

    if record_size(key, None, noted(headers)) > limit:
        left_out["headers"] = sum(len(k.encode()) + len(v) for k, v in raw.headers)
        headers = added
        if record_size(key, None, noted(headers)) > limit:
            left_out["key"] = len(key or b"")
            key = None
    headers = noted(headers)
    log.warning(
        "dead letter leaves out %s (bytes) to fit the %s-byte record limit (SWITCHYARD_MAX_RECORD_BYTES); "
        "the record stays at source=%s[%s]@%s until retention",
        headers[-1][1].decode(),
        limit,
        raw.topic,
        raw.partition,
        raw.offset,
    )
    return key, None, headers


def trace_id_of(headers: Headers) -> str:
    """The trace id of the last valid W3C ``traceparent`` of ``headers`` (``""`` when none)."""
    for k, v in reversed(headers):
        if k == "traceparent":
            parts = v.decode("ascii", "replace").split("-")
            if len(parts) >= 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
                return parts[1]
    return ""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-letter record read back from a DLQ topic, for ``dlq list`` and ``dlq replay``."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    def get(self, name: str) -> str:
        return next((v.decode("utf-8", "replace") for k, v in reversed(self.headers) if k == name), "")

    @property
    def replays(self) -> int:
        try:
            return int(self.get(REPLAY_COUNT) or 0)
        except ValueError:
            return 0

    @property
    def omitted(self) -> str:
        """What the dead letter left out to fit the record limit (:data:`OMITTED`), or ``""``."""
        return self.get(OMITTED)

    def replay_headers(self) -> Headers:
        """Original headers without error headers or old replay counts, plus the incremented replay count."""
        kept = tuple(
            (k, v)
            for k, v in self.headers
            if not (k.startswith(ERROR_PREFIX) or k in DLQ_HEADERS or k == REPLAY_COUNT)
        )
        return (*kept, (REPLAY_COUNT, str(self.replays + 1).encode()))

    def summary(self) -> dict[str, object]:
        return {
            "dlq_topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "stage": self.get(STAGE),
            "code": self.get(CODE),
            "path": self.get(PATH),
            "message": self.get(MESSAGE),
            "source": f"{self.get(SOURCE_TOPIC)}[{self.get(SOURCE_PARTITION)}]@{self.get(SOURCE_OFFSET)}",
            "failed_at": self.get(FAILED_AT),
            "replays": self.replays,
            "trace_id": self.trace_id,
            "omitted": self.omitted,
        }

    @property
    def trace_id(self) -> str:
        """The trace the record failed in: the dead letter's own header, else the ``traceparent`` it carried
        (a record that arrived traced while this worker's tracing was off)."""
        return self.get(TRACE_ID) or trace_id_of(self.headers)
