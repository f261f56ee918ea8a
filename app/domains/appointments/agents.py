"""Appointments in the worker: stage one on ``appointments.raw``, then the stale-aware table fold.

At-least-once is enough here: the fold ignores an event id it has already seen and never lets an older
``updatedAt`` overwrite a newer one, so a redelivery after a crash changes nothing and re-issues no CRM command.
"""

from app.core.runtime import Runtime
from app.domains.appointments.rules import RULES


def register(runtime: Runtime) -> None:
    runtime.stage_one(RULES)
    runtime.fold_tables(RULES)
