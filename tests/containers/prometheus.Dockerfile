# Prometheus for the CI stack (docker-compose.ci.yml): Debian's package on the locally imported base, because
# the upstream prom/prometheus image cannot be pulled without a registry. Users' compose keeps the upstream one.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus \
    && chown prometheus:prometheus /prometheus
USER prometheus
VOLUME ["/prometheus"]
ENTRYPOINT ["/usr/bin/prometheus"]
