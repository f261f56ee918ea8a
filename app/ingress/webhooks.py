"""Webhook ingress shared by every domain that receives webhooks (Vome, appointments).

The contract with a sender: ``202`` means the body is on the raw topic (the broker acknowledged it with acks=all);
``503`` means it is not, retry; ``4xx`` means retrying the same request will not help. The body is written as
received, byte for byte: validation happens downstream, where a bad record is dead-lettered with the reason, so a
webhook is rejected here only for what makes it unusable as a record at all (size, not JSON, unknown trigger, bad
signature).

Signatures: when ``SWITCHYARD_WEBHOOK_SECRET`` is set, header ``X-Switchyard-Signature: sha256=<hex>`` must be the
HMAC-SHA256 of the raw body with that secret (compared in constant time).

Tracing (when on): the request's ``traceparent`` is continued (or a trace started) by a server span, and the raw
record carries the context of its producer span, which stage one continues.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer

from app.core.codecs import decode_json_object
from app.core.errors import DecodeError
from app.core.records import EVENT_TYPE_HEADER
from app.core.runtime import Runtime, post_page
from app.core.tracing import Hop

log = logging.getLogger("switchyard.ingress")

SIGNATURE_HEADER = "X-Switchyard-Signature"
DELIVERY_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class WebhookSource:
    """One webhook endpoint. ``triggers`` (for paths with ``{trigger}``) lists accepted triggers;
    ``key_of(trigger, body)`` names the Kafka key (the entity id) from the decoded body."""

    domain: str
    path: str
    key_of: Callable[[str | None, dict[str, Any]], str | None]
    triggers: Collection[str] | None = None


@dataclass(frozen=True)
class Verdict:
    status: int
    error: str = ""
    body: dict[str, Any] | None = None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_delivery(
    source: WebhookSource,
    trigger: str | None,
    body: bytes,
    signature: str | None,
    secret: str | None,
    max_bytes: int,
) -> Verdict:
    """Everything the ingress decides before touching Kafka, as a pure function."""
    if source.triggers is not None and trigger not in source.triggers:
        return Verdict(404, f"unknown trigger {trigger!r}; known: {', '.join(sorted(source.triggers))}")
    if len(body) > max_bytes:
        return Verdict(413, f"body is {len(body)} bytes, limit {max_bytes}")
    if secret and (not signature or not hmac.compare_digest(signature.strip(), sign(secret, body))):
        return Verdict(401, f"missing or wrong {SIGNATURE_HEADER} (HMAC-SHA256 of the body)")
    try:
        doc = decode_json_object(body)
    except DecodeError as exc:
        return Verdict(400, f"{exc.code}: {exc.message}")
    return Verdict(202, body=doc)


class Ingress:
    """The worker's webhook endpoints and the one producer they share."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                prod = AIOKafkaProducer(
                    **self.rt.settings.kafka_client_options(),
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=int(DELIVERY_TIMEOUT_SECONDS * 1000),
                    linger_ms=2,
                )
                await prod.start()
                self._producer = prod
            return self._producer

    def add(self, source: WebhookSource) -> None:
        topic = self.rt.settings.topic(self.rt.catalog.raw_topic(source.domain).name)
        settings = self.rt.settings
        metrics = self.rt.metrics
        tracing = self.rt.tracing

        async def view(self_: Any, request: Any, **kwargs: Any) -> Any:
            hop = tracing.webhook(source.domain, "POST", source.path, request.path, request.headers, topic)
            try:
                response, status = await deliver(self_, request, kwargs.get("trigger"), hop)
            except BaseException:
                hop.end(500, "unexpected error")
                raise
            hop.end(status)
            return response

        async def deliver(self_: Any, request: Any, trigger: str | None, hop: Hop) -> tuple[Any, int]:
            """The answer and its status; ``hop``'s producer span is the parent the raw record carries."""
            body: bytes = await request.read()
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            verdict = check_delivery(
                source,
                trigger,
                body,
                request.headers.get(SIGNATURE_HEADER),
                secret,
                settings.webhook_max_bytes,
            )
            if verdict.status != 202:
                metrics.webhook_requests.labels(source.domain, str(verdict.status)).inc()
                log.info(
                    "webhook refused source=%s status=%s reason=%s",
                    source.domain,
                    verdict.status,
                    verdict.error,
                )
                return self_.json({"error": verdict.error}, status=verdict.status), verdict.status
            assert verdict.body is not None
            key = source.key_of(trigger, verdict.body)
            headers = [(EVENT_TYPE_HEADER, trigger.encode())] if trigger else []
            headers.extend(hop.carry)
            try:
                prod = await asyncio.wait_for(self.producer(), DELIVERY_TIMEOUT_SECONDS)
                fut = await asyncio.wait_for(
                    prod.send(topic, body, key=key.encode() if key else None, headers=headers),
                    DELIVERY_TIMEOUT_SECONDS,
                )
                meta = await asyncio.wait_for(fut, DELIVERY_TIMEOUT_SECONDS)
            except Exception as exc:  # broker down or slow: the sender must retry; nothing was acknowledged
                metrics.webhook_requests.labels(source.domain, "503").inc()
                log.warning(
                    "webhook not acknowledged by Kafka source=%s error=%s", source.domain, type(exc).__name__
                )
                response = self_.json(
                    {"error": "not stored, retry later"}, status=503, headers={"Retry-After": "5"}
                )
                return response, 503
            metrics.webhook_requests.labels(source.domain, "202").inc()
            hop.stored(meta.partition, meta.offset, key.encode() if key else None)
            accepted = {
                "status": "accepted",
                "topic": topic,
                "partition": meta.partition,
                "offset": meta.offset,
            }
            return self_.json(accepted, status=202), 202

        post_page(self.rt, source.path, f"webhook-{source.domain}", view)

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()


def webhook(runtime: Runtime, source: WebhookSource) -> None:
    """Serve ``source`` from this worker (one shared producer per runtime)."""
    ingress = runtime.services.get("ingress")
    if ingress is None:
        ingress = runtime.services["ingress"] = Ingress(runtime)
        runtime.on_shutdown(ingress.close)
    ingress.add(source)
