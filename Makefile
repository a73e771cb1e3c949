# The one entry point. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint bench faults migrate seed install clean browser

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

## browser: Debian's Chromium (and CJK fonts for the screenshots) for the browser tests;
## Playwright drives the system browser, nothing is downloaded
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BROWSER_PACKAGES := chromium fonts-noto-cjk
browser:
	@{ command -v chromium >/dev/null && test -d /usr/share/fonts/opentype/noto; } || { \
		echo "installing Debian's $(BROWSER_PACKAGES) for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES) \
		|| { $(SUDO) apt-get update -q \
		     && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $(BROWSER_PACKAGES); }; }

## test: lint, then the whole suite on both backends (SQLite + in-process, Postgres + Redis),
## in TEST_WORKERS processes (pytest-xdist): most tests wait on a live service, so two
## processes on two cores halve the wall time (every test has its own database and key prefix)
TEST_WORKERS ?= 2
test: lint browser
	$(BIN)/pytest -m "not slow" -q -n $(TEST_WORKERS) --dist worksteal

## faults: the long fault rounds (needs Postgres, Redis and redis-server); `make test` runs
## the short ones
faults: $(STAMP)
	$(BIN)/pytest -m slow -q -s tests/integration/test_state_loss.py tests/integration/test_kill9.py

## bench: the load tests with their full figures (needs Postgres + Redis)
bench: $(STAMP)
	$(BIN)/python -m loadtests.bench
	$(BIN)/python -m loadtests.duty
	$(BIN)/python -m loadtests.ingest
	$(BIN)/python -m loadtests.routing
	$(BIN)/python -m loadtests.protection
	$(BIN)/python -m loadtests.scripts
	$(BIN)/python -m loadtests.publish
	$(BIN)/python -m loadtests.sockets
	$(BIN)/python -m loadtests.report
	$(BIN)/python -m loadtests.hotspots
	$(BIN)/pytest -q -m slow tests/api/test_fuzz.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
