# The one entry point. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps: the service's own dependencies (`make run`), and those plus the tools and test
# libraries (`make test`); each is redone when pyproject.toml changes.
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(HASH)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench faults migrate seed install install-dev clean browser

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-[!d]*
	touch $@

$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@ $(STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

## run: install, migrate, seed the 13 cities and demo users, serve on http://$(HOST):$(PORT)
run: $(STAMP)
	test -f .env || (umask 077 && echo "SURGE_SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))')" > .env)
	$(BIN)/surge migrate
	$(BIN)/surge seed --demo-users
	$(BIN)/surge serve --host $(HOST) --port $(PORT)

migrate: $(STAMP)
	$(BIN)/surge migrate

seed: $(STAMP)
	$(BIN)/surge seed --demo-users

## lint: ruff (lint + format check) and mypy --strict
lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests loadtests
	$(BIN)/ruff format --check src tests loadtests
	$(BIN)/mypy

## browser: Debian's Chromium (and CJK fonts for the screenshots) for the browser tests, and
## Debian's nginx for the load-balancer tests (deploy/nginx/surge.conf in front of two
## instances); Playwright drives the system browser, nothing is downloaded
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
TEST_PACKAGES := chromium fonts-noto-cjk nginx
browser:
	@{ command -v chromium >/dev/null && test -d /usr/share/fonts/opentype/noto \
	   && { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null; } || { \
		echo "installing Debian's $(TEST_PACKAGES) for the tests"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(TEST_PACKAGES) \
		|| { $(SUDO) apt-get update -q \
		     && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(TEST_PACKAGES); }; }

## test: lint, then the whole suite on both backends (SQLite + in-process, Postgres + Redis),
## in TEST_WORKERS processes (pytest-xdist): most tests wait on a live service (offer timers,
## sockets), so three processes keep two cores busy where two left a third of them idle (every
## test has its own database and key prefix)
TEST_WORKERS ?= 3
test: lint browser
	$(BIN)/pytest -m "not slow" -q -n $(TEST_WORKERS) --dist worksteal

## faults: the long fault rounds (needs Postgres, Redis and redis-server) and the two-instance
## tests through nginx; `make test` runs the short ones
faults: $(DEV_STAMP)
	$(BIN)/pytest -m slow -q -s tests/integration/test_state_loss.py tests/integration/test_kill9.py \
		tests/integration/test_instances.py tests/integration/test_supervision_instances.py

## bench: the load tests with their full figures (needs Postgres + Redis)
bench: $(DEV_STAMP)
	$(BIN)/python -m loadtests.bench
	$(BIN)/python -m loadtests.duty
	$(BIN)/python -m loadtests.ingest
	$(BIN)/python -m loadtests.routing
	$(BIN)/python -m loadtests.protection
	$(BIN)/python -m loadtests.whatif
	$(BIN)/python -m loadtests.scripts
	$(BIN)/python -m loadtests.publish
	$(BIN)/python -m loadtests.required
	$(BIN)/python -m loadtests.sockets
	$(BIN)/python -m loadtests.report
	$(BIN)/python -m loadtests.hotspots
	$(BIN)/pytest -q -m slow tests/api/test_fuzz.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
