# Two commands for a fresh machine (each does its own set-up):
#   make demo   embedded Kafka + worker + reference CRM + every domain's seed samples, then a summary
#   make test   lint (ruff, import layers), types, then the whole test suite against a real Kafka broker
# .ci/run calls `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: pytest-sixth-domain demo test tools venv jars jaeger lock lint types pytest pytest-docker-broker bench trace-screenshot clean

# Python's venv module, a JDK and Maven: installed with apt-get when missing and root, else named (.ci/ensure-tools).
tools:
	@.ci/ensure-tools

$(STAMP): pyproject.toml | tools
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

venv: $(STAMP)

# The broker's jars from Maven Central, cached under deploy/kafka/target/ (version: SWITCHYARD_KAFKA_VERSION).
jars: $(STAMP)
	$(BIN)/python -m app.broker --fetch-only

# Jaeger all-in-one for the tracing test, built from the Go module proxy at the version deploy/jaeger/go.mod pins,
# once: cached as deploy/jaeger/target/jaeger-<version> (tests/jaeger.py; needs Go 1.24+).
jaeger: $(STAMP)
	$(BIN)/python -m tests.jaeger

# The image's dependencies, pinned with hashes (the Dockerfile installs this file with --require-hashes, so a
# rebuild gets the same bytes). Re-run after changing [project].dependencies or to take upgrades; commit the result.
# The project's build backend (setuptools) is pinned too: the image builds the wheel without build isolation.
lock: venv
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --build-deps-for=wheel \
		--no-emit-index-url --no-emit-find-links --output-file=requirements.lock pyproject.toml

demo: tools venv jars
	$(BIN)/switchyard demo --once

lint: venv
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench
	$(BIN)/lint-imports

types: venv
	$(BIN)/mypy

pytest: tools venv jars jaeger
	$(BIN)/pytest -q

# One domain's integration tests again, on a Kafka container through testcontainers (SWITCHYARD_TEST_BROKER,
# tests/containers/broker.py); skipped with the reason where no Docker engine answers, a failure in CI.
pytest-docker-broker: venv
	SWITCHYARD_TEST_BROKER=docker $(BIN)/pytest -q tests/integration/test_phoenix.py

# The sixth-domain proof (issue 21): the test-only domain of tests/integration/testdomain joins the five through
# its own catalog file alone, and the harnesses that iterate the catalog take it through the demo, the bench smoke
# test, the reliability load mix and the AsyncAPI document with nothing outside its folder changed.
SIXTH_DOMAIN := tests/integration/testdomain/catalog.yaml
pytest-sixth-domain: venv jars
	SWITCHYARD_EXTRA_CATALOGS=$(SIXTH_DOMAIN) $(BIN)/pytest -q tests/unit/test_asyncapi.py \
	  tests/integration/test_demo.py tests/bench/test_bench_smoke.py -k "testdomain or asyncapi or demo"
	SWITCHYARD_EXTRA_CATALOGS=$(SIXTH_DOMAIN) $(BIN)/pytest -q \
	  tests/reliability/test_worker_kills.py::test_five_sigkills_under_mixed_load_lose_nothing

test: lint types pytest pytest-sixth-domain pytest-docker-broker

bench: venv jars
	$(BIN)/switchyard bench --quick

# docs/tracing-jaeger.png: one Vome booking's trace in Jaeger's UI, by headless Chromium (docs/trace_screenshot.py;
# needs Debian's chromium and Jaeger's UI built into JAEGER_UI, which the Go module does not carry).
trace-screenshot: venv jars jaeger
	$(BIN)/python -m docs.trace_screenshot

clean:
	rm -rf $(VENV) .switchyard deploy/kafka/target deploy/jaeger/target build
