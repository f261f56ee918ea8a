"""Vome, the volunteer-management platform: its webhooks keep a CRM in step with an organisation's volunteers.

Four payload families (bookings, profiles, form submissions, sequence assignments) arrive on ``vome.raw`` as
13 triggers. Switchyard checks them, sends allow-listed projections downstream and CRM commands to the CRM
sink, and keeps one CRM-facing state per volunteer. Medical, emergency-contact, birth-date, consent and
attachment data never leave the raw topic (:mod:`app.domains.vome.privacy`).
"""

from app.core.domain import Domain
from app.domains.vome.rules import RULES

DOMAIN = Domain(RULES, views="app.domains.vome.views", traffic="app.domains.vome.generate")
