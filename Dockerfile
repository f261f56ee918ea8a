# The Switchyard image: `switchyard worker` by default; `switchyard crm-reference`, `topics create`, `dlq ...`
# run from the same image. Used by docker-compose.yml and deploy/k8s/.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/switchyard
COPY pyproject.toml README.md ./
COPY app ./app
COPY topics ./topics
COPY schemas ./schemas
COPY samples ./samples
RUN pip install .

# The package finds its data (topics/, schemas/, samples/) beside itself (app/core/paths.py), so this tree is
# what runs; pip installed its dependencies and the `switchyard` command.
ENV PYTHONPATH=/opt/switchyard

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/switchyard switchyard \
    && mkdir -p /var/lib/switchyard \
    && chown switchyard:switchyard /var/lib/switchyard
USER switchyard

# RocksDB tables live under the data dir: mount a volume there (one per worker). The web port serves
# /metrics, /health/live, /health/ready, /api/* and /webhooks/*.
ENV SWITCHYARD_DATA_DIR=/var/lib/switchyard \
    SWITCHYARD_WEB_HOST=0.0.0.0 \
    SWITCHYARD_WEB_PORT=6066
VOLUME ["/var/lib/switchyard"]
EXPOSE 6066

CMD ["switchyard", "worker"]
