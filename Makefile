# Two commands do all the set-up: `make run` (the system with demo data) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := bash deploy/local/stack.sh
PACKAGES := -e contracts -e services/runtime -e services/booking -e services/notifier -e services/audit
RUN_DIR := .run

# Servers for tests: AMQP_URL/MONGODB_URL if set; else testcontainers when a Docker engine answers; else the local stack.
USE_LOCAL_STACK := $(shell if [ -z "$$AMQP_URL" ] && ! docker info >/dev/null 2>&1; then echo yes; fi)

.PHONY: help install stack stack-stop browser test lint typecheck run stop logs schemas bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt contracts/pyproject.toml services/*/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.8
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps $(PACKAGES)
	touch $@

install: $(BIN)/.installed ## Create .venv with the pinned requirements and the five packages

stack: ## Install (once) and start RabbitMQ, FerretDB over PostgreSQL, and Mailpit on this machine
	$(STACK) install
	$(STACK) start

stack-stop: ## Stop the local servers
	$(STACK) stop

lint: install ## ruff and mypy --strict (part of make test)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contracts/src services/runtime/src services/booking/src services/notifier/src services/audit/src bench

browser: ## Install Debian's Chromium for the browser tests (once; Playwright drives it, never downloads its own)
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: lint browser ## Lint, then run every test (unit, integration, end to end, faults) against real servers
ifeq ($(USE_LOCAL_STACK),yes)
	$(MAKE) --no-print-directory stack
endif
	$(BIN)/python contracts/tools/generate_schemas.py --check
	$(BIN)/pytest

run: install stack ## Start the servers and the three services, load demo data, print where to look
	@bash deploy/local/run.sh start

stop: ## Stop the three services started by `make run` (the servers keep running; `make stack-stop` stops them)
	@bash deploy/local/run.sh stop

logs: ## Follow the services' logs
	tail -F $(RUN_DIR)/*.log

schemas: install ## Regenerate the committed JSON Schemas and AsyncAPI document from the contracts
	$(BIN)/python contracts/tools/generate_schemas.py

bench: install ## Benchmarks (not part of `make test`)
ifeq ($(USE_LOCAL_STACK),yes)
	$(MAKE) --no-print-directory stack
endif
	$(BIN)/python -m bench

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(RUN_DIR)
