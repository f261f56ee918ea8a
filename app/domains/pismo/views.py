"""Pismo's HTTP endpoints: the ``phases`` table, one phase or every phase this worker holds.

``GET /api/pismo/phases/{phase_key}`` is routed to the worker owning the phase's partition, so it answers from any
worker; the key is the phase id (``"~"`` for results without a phase, a leading ``~`` doubled; ``phase_key`` in
``state.py``), and the listing is keyed the same way. ``GET /api/pismo/phases`` does not gather from other workers: it lists the phases in the partitions this
worker owns and says which partitions those are (``complete`` is true only when it owns all of them), so a
partial answer can never be mistaken for the whole migration. With one worker, or behind a gatherer that asks
every worker, it is the full picture.
"""

from __future__ import annotations

from typing import Any

from app.core.runtime import Runtime, authorized, table_query
from app.domains.pismo.rules import RULES
from app.domains.pismo.tables import PHASES_TABLE, local_phases, public_phase

PHASES_PATH = "/api/pismo/phases"
PHASE_PATH = "/api/pismo/phases/{phase_key}"


def register(runtime: Runtime) -> None:
    table_query(runtime, PHASE_PATH, RULES.name, PHASES_TABLE, "phase_key", render=public_phase)
    holder = runtime.table(RULES.name, PHASES_TABLE)

    @runtime.page(PHASES_PATH, name="pismo-phases-all")
    async def phases(self: Any, request: Any) -> Any:
        if not authorized(runtime, request):
            return self.json({"error": "missing or wrong bearer token"}, status=401)
        held, total = holder.held_partitions(runtime.settings.topic_partitions)
        return self.json(
            {
                "worker": runtime.settings.worker_id or None,
                "partitions": {"held": held, "total": total},
                "complete": len(held) == total,
                "phases": local_phases(holder.table),
            }
        )
