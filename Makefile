# asyncarch — `make help` lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.DEFAULT_GOAL := help
.PHONY: help install browser run test unit integration lint format typecheck kafka-up kafka-down bench bench-deps clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv with everything (quick and a no-op when done)

run: install ## Start Kafka (local, KRaft) and every service; Ctrl-C stops all
	$(BIN)/asyncarch up

browser: ## Debian's chromium for the headless upload-page test (no-op when installed)
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test: install browser bench-deps ## Run every test: unit, then integration against a real broker the tests start
	$(BIN)/python -m pytest

unit: install ## Unit tests only (no broker)
	$(BIN)/python -m pytest tests/unit

integration: install browser bench-deps ## Integration tests only
	$(BIN)/python -m pytest tests/integration -m integration

chaos: install ## Faults under load (CHAOS_TASKS=10000), then hostile input and schemathesis (FUZZ_EXAMPLES=200)
	CHAOS_TASKS=$${CHAOS_TASKS:-10000} $(BIN)/python -m pytest tests/resilience -m resilience -v
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/integration/test_openapi_fuzz.py tests/integration/test_hostile_input.py -m integration -v

lint: install ## ruff lint and format check, and the import contracts (lint-imports)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: install ## Apply ruff formatting
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

typecheck: install ## mypy on the source packages
	$(BIN)/mypy

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(BENCH_STAMP)

bench-deps: $(BENCH_STAMP) ## The bench extra (Flask, gunicorn, Celery, matplotlib) and Debian's redis-server
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

bench: install bench-deps ## Pipeline vs model ceiling vs the seed's Flask+Celery+Redis (BENCH_ARGS="--quick" or "--sweep")
	$(BIN)/python -m bench.run $(BENCH_ARGS)

kafka-up: install ## Start only the local Kafka broker (durable)
	$(BIN)/asyncarch kafka up

kafka-down: install ## Stop the local Kafka broker
	$(BIN)/asyncarch kafka down

clean: ## Remove the virtual environment and caches in the repo
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
