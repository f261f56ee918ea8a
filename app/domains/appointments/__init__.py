"""Appointment booking platform: ``POST Appointment`` webhooks -> appointment state and CRM activities.

Each webhook carries the whole appointment after a change (and the previous version, if any). Switchyard
validates it against the seed's limits, publishes an allow-listed enrichment on ``appointments.enriched``,
folds it into a per-appointment table that ignores stale updates, and turns applied updates into CRM commands.
"""

from app.core.domain import Domain
from app.domains.appointments.rules import RULES

DOMAIN = Domain(RULES, views="app.domains.appointments.views", traffic="app.domains.appointments.generate")
