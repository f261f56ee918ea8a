# The Switchyard image. Entrypoint `switchyard`: `worker` by default; `crm-reference`, `topics create`,
# `dlq ...` run from the same image. Used by docker-compose.yml and deploy/k8s/.
#
# BASE_IMAGE is any Debian bookworm with python3 (3.11+) and its venv module: the public slim image by default;
# CI passes a base it imported from an mmdebstrap rootfs, since no image registry is reachable there.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A virtualenv, not the system site-packages: Debian's python3 refuses system-wide pip installs (PEP 668), and
# the final stage copies this one directory.
RUN python3 -m venv /opt/switchyard
WORKDIR /src
# Dependencies first, exactly as locked (`make lock`): pinned versions, every file checked against its hash, so
# two builds of one commit install the same bytes. A layer of its own, rebuilt only when the lock changes.
COPY requirements.lock ./
RUN /opt/switchyard/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY app ./app
COPY topics ./topics
COPY schemas ./schemas
COPY samples ./samples
# A real (non-editable) install: setup.py packs topics/, schemas/ and samples/ into the package as app/_data/.
# No dependency resolution and no build isolation: everything, the build backend included, came from the lock.
# The check runs from / so that it imports the installed package, not /src/app.
RUN /opt/switchyard/bin/pip install --no-deps --no-build-isolation . \
    && /opt/switchyard/bin/pip check \
    && cd / && /opt/switchyard/bin/python -c "from app import paths; from app.core.catalog import load_catalog; \
assert paths.INSTALLED, paths.DATA_ROOT; load_catalog(); assert any(paths.SAMPLES_DIR.glob('*/*.json'))"

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/switchyard/bin:$PATH
COPY --from=build /opt/switchyard /opt/switchyard

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/switchyard switchyard \
    && mkdir -p /var/lib/switchyard \
    && chown switchyard:switchyard /var/lib/switchyard
USER switchyard
WORKDIR /var/lib/switchyard

# RocksDB tables live under the data dir: mount a volume there (one per worker). The web port serves
# /metrics, /health/live, /health/ready, /api/* and /webhooks/*.
ENV SWITCHYARD_DATA_DIR=/var/lib/switchyard \
    SWITCHYARD_WEB_HOST=0.0.0.0 \
    SWITCHYARD_WEB_PORT=6066
VOLUME ["/var/lib/switchyard"]
EXPOSE 6066

# Live = the worker's web server answers. The worker binds SWITCHYARD_WEB_HOST (compose sets the service name
# there, so other workers can reach it), so the probe asks that address, or loopback for a wildcard bind.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request as u; h = os.environ.get('SWITCHYARD_WEB_HOST') or '127.0.0.1'; h = '127.0.0.1' if h in ('0.0.0.0', '::') else h; u.urlopen(f\"http://{h}:{os.environ.get('SWITCHYARD_WEB_PORT', '6066')}/health/live\", timeout=3)"]

ENTRYPOINT ["switchyard"]
CMD ["worker"]
