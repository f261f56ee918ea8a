"""Pismo: customer migration results (``customer_outgoing`` v1) -> an append-only Avro audit trail.

Pismo reports, per migrated customer, whether the migration into its platform succeeded. Compliance needs
every accepted result kept verbatim with where it came from (``audit.migration``, exactly once), operations
need FAIL results for alerting (``pismo.migration-failures``), and the migration team watches per-phase
success counts (the ``phases`` table, fed by ``pismo.phase-results``).
"""

from app.core.domain import Domain
from app.domains.pismo.rules import RULES

DOMAIN = Domain(RULES, views="app.domains.pismo.views", traffic="app.domains.pismo.generate")
