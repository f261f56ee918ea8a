"""Vome over HTTP: the webhook in, one volunteer's CRM-facing snapshot out.

The webhook keys each delivery by the entity it is about (:func:`~app.domains.vome.rules.entity_id_of`), exactly
as ``switchyard produce vome`` keys a file, so every version of a booking, submission or assignment lands on one
raw partition and stage one sees them in delivery order. The query answers :func:`~app.domains.vome.state.snapshot`
(what ``vome.volunteers`` carries), never the stored state, so the API can show no more than the topic does; an
erased volunteer (whose state is the erasure marker) is unknown, as on the topic.
"""

from app.core.runtime import Runtime, table_query
from app.domains.vome.rules import TRIGGERS, entity_id_of
from app.domains.vome.state import render
from app.ingress.webhooks import WebhookSource, webhook

WEBHOOK_PATH = "/webhooks/vome/{trigger}"
VOLUNTEER_PATH = "/api/vome/volunteers/{userId}"
VOLUNTEERS_TABLE = "volunteers"


def register(runtime: Runtime) -> None:
    webhook(runtime, WebhookSource("vome", WEBHOOK_PATH, entity_id_of, triggers=TRIGGERS))
    table_query(runtime, VOLUNTEER_PATH, "vome", VOLUNTEERS_TABLE, "userId", render=render)
