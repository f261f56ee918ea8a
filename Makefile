# Two commands for a fresh machine (each does its own set-up):
#   make demo   embedded Kafka + worker + reference CRM + every domain's seed samples, then a summary
#   make test   lint, types, then the whole test suite against a real Kafka broker
# .ci/run calls `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv jars lint types pytest bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $(STAMP)

venv: $(STAMP)

# The broker's jars from Maven Central, cached under deploy/kafka/target/ (version: SWITCHYARD_KAFKA_VERSION).
jars: $(STAMP)
	$(BIN)/python -m app.broker --fetch-only

demo: venv jars
	$(BIN)/switchyard demo --once

lint: venv
	$(BIN)/ruff check app tests bench
	$(BIN)/ruff format --check app tests bench

types: venv
	$(BIN)/mypy

pytest: venv jars
	$(BIN)/pytest -q

test: lint types pytest

bench: venv jars
	$(BIN)/switchyard bench --quick

clean:
	rm -rf $(VENV) .switchyard deploy/kafka/target
