# The one entry point. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench migrate seed install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

## run: install, migrate, seed the 13 cities and demo users, serve on http://$(HOST):$(PORT)
run: $(STAMP)
	test -f .env || echo "SURGE_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))')" > .env
	$(BIN)/surge migrate
	$(BIN)/surge seed --demo-users
	$(BIN)/surge serve --host $(HOST) --port $(PORT)

migrate: $(STAMP)
	$(BIN)/surge migrate

seed: $(STAMP)
	$(BIN)/surge seed --demo-users

## lint: ruff (lint + format check) and mypy --strict
lint: $(STAMP)
	$(BIN)/ruff check src tests loadtests
	$(BIN)/ruff format --check src tests loadtests
	$(BIN)/mypy

## test: lint, then the whole suite on both backends (SQLite + in-process, Postgres + Redis)
test: lint
	$(BIN)/pytest -m "not slow" -q

## bench: the load tests with their full figures (needs Postgres + Redis)
bench: $(STAMP)
	$(BIN)/python -m loadtests.bench
	$(BIN)/python -m loadtests.routing
	$(BIN)/python -m loadtests.scripts
	$(BIN)/python -m loadtests.publish
	$(BIN)/python -m loadtests.report

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
