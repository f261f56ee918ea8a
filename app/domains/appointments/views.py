"""Appointments over HTTP: the booking platform's webhook in, one appointment's state and history out.

The webhook is keyed by the appointment id exactly as ``switchyard produce`` keys a file, so every version of an
appointment lands on one partition whichever way it arrives, and stage one sees them in delivery order.
"""

from app.core.runtime import Runtime, table_query
from app.domains.appointments.rules import appointment_id_of
from app.domains.appointments.state import TABLE
from app.ingress.webhooks import WebhookSource, webhook

WEBHOOK_PATH = "/webhooks/appointments"
APPOINTMENT_PATH = "/api/appointments/{appointmentId}"


def register(runtime: Runtime) -> None:
    webhook(
        runtime,
        WebhookSource(
            "appointments", WEBHOOK_PATH, lambda trigger, body: appointment_id_of(body), triggers=None
        ),
    )
    table_query(runtime, APPOINTMENT_PATH, "appointments", TABLE, "appointmentId")
