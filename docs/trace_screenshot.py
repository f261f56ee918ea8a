"""Take docs/tracing-jaeger.png: one Vome booking's trace in Jaeger's UI, rendered by headless Chromium.

Run from the repository root (``make trace-screenshot``): an embedded Kafka broker, the reference CRM, a worker
tracing every record to a Jaeger all-in-one (``tests/jaeger.py``), one booking webhook with a ``traceparent``,
then Chromium opens ``/trace/<id>`` and saves the page. Needs Debian's ``chromium`` and Jaeger's UI built into the
folder named by ``SWITCHYARD_JAEGER_UI`` (Jaeger's Go module embeds no UI: build jaeger-ui's ``packages/jaeger-ui``
at the tag matching the pinned Jaeger with npm; its ``build/`` is that folder). Only the committed picture needs
any of this; CI does not run it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import httpx

from app.broker import EmbeddedBroker
from app.domains.vome.views import WEBHOOK_PATH
from app.paths import ROOT, SAMPLES_DIR
from app.sinks.crm.benchmark import TOKEN
from tests.integration.test_crm_sink import Crm
from tests.jaeger import UI_ASSETS_ENV, Jaeger
from tests.worker import Deployment, wait_until

OUT = ROOT / "docs" / "tracing-jaeger.png"
BOOKING = SAMPLES_DIR / "vome" / "booking.created--food-bank-shift.json"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


def screenshot(url: str, out: Path, profile: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium is not installed (Debian: apt-get install chromium)")
    subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1600,560",
            "--virtual-time-budget=15000",  # the UI is a single-page app: let it fetch and render the trace
            f"--screenshot={out}",
            url,
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )


def main() -> None:
    if not os.environ.get(UI_ASSETS_ENV):
        sys.exit(f"{UI_ASSETS_ENV} must name Jaeger's built UI (see this script's docstring)")
    with tempfile.TemporaryDirectory(prefix="switchyard-trace-") as tmp_name:
        tmp = Path(tmp_name)
        broker = EmbeddedBroker(data_dir=tmp / "kafka", log_file=tmp / "kafka.log")
        broker.start()
        jaeger = Jaeger(tmp / "jaeger.log")
        crm = Crm(tmp)
        d = Deployment(
            broker.bootstrap,
            f"shot{uuid.uuid4().hex[:6]}",
            tmp,
            SWITCHYARD_DOMAINS="vome,crm",
            SWITCHYARD_CRM_BASE_URL=crm.url,
            SWITCHYARD_CRM_TOKEN=TOKEN,
            SWITCHYARD_TOPIC_PREFIX="",
        )
        try:
            d.cli("topics", "create")
            w = d.worker(
                OTEL_EXPORTER_OTLP_ENDPOINT=jaeger.otlp_endpoint,
                OTEL_SERVICE_NAME="switchyard",
                OTEL_TRACES_SAMPLER="parentbased_always_on",
                OTEL_BSP_SCHEDULE_DELAY="200",
            ).start()
            trace_id = secrets.token_hex(16)
            r = httpx.post(
                w.url + WEBHOOK_PATH.format(trigger="booking.created"),
                content=BOOKING.read_bytes(),
                headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"},
                timeout=30,
            )
            r.raise_for_status()
            wait_until(
                lambda: any("meetings" in s["operationName"] for s in jaeger.trace(trace_id)),
                timeout=90,
                what="the booking's CRM call in Jaeger",
            )
            wait_until(lambda: len(jaeger.trace(trace_id)) >= 9, timeout=30, what="every span of the trace")
            screenshot(f"{jaeger.url}/trace/{trace_id}", OUT, tmp / "chromium")
            print(f"wrote {OUT.relative_to(ROOT)} (trace {trace_id}, {len(jaeger.trace(trace_id))} spans)")
        finally:
            d.stop_all()
            crm.stop()
            jaeger.stop()
            broker.close()


if __name__ == "__main__":
    main()
