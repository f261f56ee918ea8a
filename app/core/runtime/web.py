"""HTTP plumbing shared by every domain: health, metrics, bearer auth, and owner-routed table queries.

Faust's own ``/table`` (and router, graph, stats) endpoints are switched off in :mod:`.faustapp`: they expose every
table without auth. What is served is listed here and in each domain's ``views.py``.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core.runtime.internals import started_consumer
from app.core.runtime.worker import Runtime

Handler = Callable[..., Awaitable[Any]]


def authorized(runtime: Runtime, request: Any) -> bool:
    token = runtime.settings.api_token
    if token is None or not token.get_secret_value():
        return True
    header = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    return hmac.compare_digest(header.encode(), expected.encode())


def is_ready(runtime: Runtime) -> bool:
    app = runtime.app
    if app.rebalancing or getattr(app, "in_recovery", False):
        return False
    consumer = started_consumer(app)
    return bool(consumer is not None and consumer.assignment())


def register_core_views(runtime: Runtime) -> None:
    app = runtime.app

    @app.page("/health/live")
    async def live(self: Any, request: Any) -> Any:
        return self.json({"status": "live"})

    @app.page("/health/ready")
    async def ready(self: Any, request: Any) -> Any:
        ok = is_ready(runtime)
        runtime.metrics.ready.set(1 if ok else 0)
        return self.json({"status": "ready" if ok else "not ready"}, status=200 if ok else 503)

    @app.page("/metrics")
    async def metrics(self: Any, request: Any) -> Any:
        body = generate_latest(runtime.metrics.registry)
        return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])


def post_page(runtime: Runtime, path: str, name: str, handler: Handler) -> None:
    """Serve ``handler(view, request, **match)`` at ``path`` for POST only: GET on a webhook URL is a 405, not a 200
    (Faust's function views answer every method, so this is a class-based view with ``post`` alone)."""
    from faust.web import View

    class PostOnly(View):
        async def post(self, request: Any, **kwargs: Any) -> Any:
            return await handler(self, request, **kwargs)

    runtime.app.page(path, name=name)(PostOnly)


def table_query(
    runtime: Runtime,
    path: str,
    domain: str,
    table: str,
    match: str,
    render: Callable[[Any], Any] = lambda state: state,
) -> None:
    """``GET path`` answers the state of ``table``'s key ``{match}``, served by the worker owning its partition.

    Other workers redirect (Faust's table router); unknown keys are 404; a bearer token is required when one is
    configured. ``render`` shapes the stored state for the answer (e.g. to drop internal bookkeeping); a state it
    renders as None (a marker kept for the domain's own use, like Vome's erasures) is 404 too.
    """
    app = runtime.app
    holder = runtime.table(domain, table)

    async def view(self: Any, request: Any, **kwargs: Any) -> Any:
        if not authorized(runtime, request):
            return self.json({"error": "missing or wrong bearer token"}, status=401)
        key = kwargs[match]
        state = holder.get(key)
        shown = None if state is None else render(state)
        if shown is None:
            return self.json({"error": f"no {table} for {match}={key}"}, status=404)
        return self.json(shown)

    routed = app.table_route(table=holder.table, match_info=match)(view)
    app.page(path, name=f"{domain}-{table}-{match}")(routed)
