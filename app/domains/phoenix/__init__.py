"""Phoenix, the coaching platform: its bus announces finished (or canceled) video-call coaching sessions.

Switchyard turns each ``VCSessionDoneEvent`` into an enriched session record, keeps every talent's progress
through their program and every coach's weekly activity as tables, and passes any other bus event on untouched
to ``phoenix.unhandled`` so that new Phoenix event types never stop the stream.
"""

from app.core.domain import Domain
from app.domains.phoenix.rules import RULES

DOMAIN = Domain(RULES, views="app.domains.phoenix.views", traffic="app.domains.phoenix.generate")
