"""Lära, the learning management system: training cycles ("règlements"), their periods and credit
requirements, each member's credit progress and the member-status ranges that say when someone is a member.

Switchyard keeps every member's status timeline and, joined with their credit progress and the current period
of each cycle they follow, a compliance snapshot per member on ``lara.compliance``.
"""

from app.core.domain import Domain
from app.domains.lara.rules import RULES

DOMAIN = Domain(RULES, views="app.domains.lara.views", traffic="app.domains.lara.generate")
