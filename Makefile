# Rehabilitation Services Marketplace
#
#   make run     install, build assets, migrate, load demo data, serve http://127.0.0.1:5000
#   make test    the whole suite on SQLite and on a throwaway PostgreSQL, then the browser tests
#
# Work already done is remembered by stamp files in .venv/, so running a target again is fast.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

export FLASK_APP := wsgi
export PIP_DISABLE_PIP_VERSION_CHECK := 1

INSTALL_STAMP := $(VENV)/.install.stamp
NPM_STAMP := $(VENV)/.npm.stamp
ASSETS_STAMP := $(VENV)/.assets.stamp
ASSET_SOURCES := $(shell find assets -type f 2>/dev/null)
ASSET_OUTPUTS := marketplace/static/dist/application.css marketplace/static/dist/application.mjs \
	marketplace/static/dist/govuk-frontend.min.js marketplace/static/dist/moj-frontend.mjs \
	marketplace/static/assets/images
missing = $(filter-out $(wildcard $(1)),$(1))

# Debian packages that `make test` installs when missing (as root).
TEST_DEBIAN_PACKAGES := postgresql chromium fonts-liberation

# The suite without the browser tests; `make test` runs it on SQLite, then on PostgreSQL.
SUITE := -n $(PYTEST_WORKERS) -m 'not e2e' --ignore=tests/e2e
# Each stage writes a JUnit report here, from which `make test` counts the tests of all stages.
REPORTS := $(VENV)/test-reports
report = --junit-xml=$(REPORTS)/$(1).xml

# Prints "N passed, N failed, N skipped" for the JUnit reports given as arguments.
define COUNT_TESTS
import sys, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sys.argv[1:]:
    try:
        suites = list(ET.parse(path).getroot().iter("testsuite"))
    except (OSError, ET.ParseError):
        continue
    for suite in suites:
        tests, failures, errors, skips = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        failed += failures + errors
        skipped += skips
        passed += tests - failures - errors - skips
print(f"{passed} passed, {failed} failed, {skipped} skipped")
endef
export COUNT_TESTS

.PHONY: help run install assets db demo test test-deps test-system-deps test-sqlite test-postgres \
	test-e2e bench lint lock clean distclean FORCE

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

# ---------------------------------------------------------------------------------------------
# Set-up

# Links in emails name the address `make run` serves (HOST and PORT), unless
# MARKETPLACE_BASE_URL is set; in production it is always set, never taken from a request.
RUN_BASE_URL := $(or $(MARKETPLACE_BASE_URL),http://$(HOST):$(PORT))

run: export MARKETPLACE_BASE_URL := $(RUN_BASE_URL)
run: install assets demo ## set everything up and serve http://127.0.0.1:5000 (SQLite, console email)
	@echo "Serving http://$(HOST):$(PORT)/ (press Ctrl+C to stop); links in emails: $(RUN_BASE_URL)"
	MARKETPLACE_BASE_URL=$(RUN_BASE_URL) $(FLASK) run --host $(HOST) --port $(PORT)

install: $(INSTALL_STAMP) ## create .venv and install the project with its dev extras (exact pins)

$(INSTALL_STAMP): setup.cfg pyproject.toml requirements/constraints.txt
	@if [ ! -x $(BIN)/python ]; then \
		if ! $(PYTHON) -c 'import ensurepip' 2>/dev/null && [ "$$(id -u)" = 0 ] \
			&& command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
		fi; \
		echo "Creating $(VENV) with $$($(PYTHON) --version)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	$(BIN)/python -m pip install --quiet --progress-bar off -c requirements/constraints.txt -e '.[dev]'
	@touch $@

# npm ci only when the lock file changed or node_modules is missing.
$(NPM_STAMP): package.json package-lock.json $(if $(wildcard node_modules),,FORCE)
	@command -v npm >/dev/null || { echo "npm not found: install Node.js 20 or later" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(VENV) && touch $@

assets: $(ASSETS_STAMP) ## build the CSS and JavaScript into marketplace/static/

$(ASSETS_STAMP): $(NPM_STAMP) $(ASSET_SOURCES) $(if $(call missing,$(ASSET_OUTPUTS)),FORCE)
	npm run --silent build
	@touch $@

db: install ## apply the migrations (instance/marketplace.db unless MARKETPLACE_DATABASE_URL is set)
	$(FLASK) db upgrade

demo: db ## load the demo data (idempotent) and list the demo sign-ins
	$(FLASK) demo load
	@echo
	@$(FLASK) demo users

# ---------------------------------------------------------------------------------------------
# Tests

test: test-deps ## run the suite on SQLite and PostgreSQL, then the browser tests
	@rm -rf $(REPORTS); status=0; summary=""; started=$$(date +%s); \
	for stage in sqlite postgres e2e; do \
		echo; echo "==> make test-$$stage"; \
		begin=$$(date +%s); \
		if $(MAKE) --no-print-directory test-$$stage; then result=ok; else result=FAILED; status=1; fi; \
		summary+="$$(printf '  %-9s %-7s %5ss  %s' $$stage $$result $$(( $$(date +%s) - begin )) \
			"$$($(BIN)/python -c "$$COUNT_TESTS" $(REPORTS)/$$stage.xml)")\n"; \
	done; \
	printf '\nmake test, stage by stage (%ss in all):\n%b' $$(( $$(date +%s) - started )) "$$summary"; \
	echo "total: $$($(BIN)/python -c "$$COUNT_TESTS" $(REPORTS)/*.xml)"; \
	exit $$status

test-deps: test-system-deps install assets ## install what the tests need

test-system-deps:
	@missing=""; \
	{ dpkg -s postgresql >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } \
		|| missing+=" postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing+=" chromium"; \
	if [ -n "$$missing" ] && ! dpkg -s fonts-liberation >/dev/null 2>&1; then missing+=" fonts-liberation"; fi; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing Debian packages:$$missing"; \
			apt-get update -qq; \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "Missing:$$missing. Install them (apt-get install$$missing) or run as root." >&2; \
			exit 1; \
		fi; \
	fi

# Exit code 5 (no test collected) fails each stage: every stage must run tests.
test-sqlite: test-deps
	env -u MARKETPLACE_TEST_DATABASE_URL $(PYTEST) $(SUITE) $(call report,sqlite) || { rc=$$?; \
		[ $$rc = 5 ] && echo "test-sqlite: no test was collected" >&2; exit $$rc; }

# The cluster is stopped and deleted whatever happens (the trap runs on any exit).
test-postgres: test-deps
	@trap 'scripts/test-postgres.sh stop' EXIT; trap 'exit 130' INT TERM; \
	scripts/test-postgres.sh start; \
	url="$$(scripts/test-postgres.sh url)"; \
	echo "MARKETPLACE_TEST_DATABASE_URL=$$url $(PYTEST) $(SUITE) $(call report,postgres)"; \
	MARKETPLACE_TEST_DATABASE_URL="$$url" $(PYTEST) $(SUITE) $(call report,postgres) || { rc=$$?; \
		[ $$rc = 5 ] && echo "test-postgres: no test was collected" >&2; exit $$rc; }

test-e2e: test-deps
	env -u MARKETPLACE_TEST_DATABASE_URL $(PYTEST) tests/e2e $(call report,e2e) || { rc=$$?; \
		[ $$rc = 5 ] && echo "test-e2e: no browser test was collected" >&2; exit $$rc; }

# ---------------------------------------------------------------------------------------------
# Benchmarks, lint, lock, clean

bench: test-system-deps install assets ## measure pages against a Flask hello world with wrk (writes benchmarks/RESULTS.md)
	@if ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
		else echo "wrk not found: apt-get install wrk" >&2; exit 1; fi; \
	fi
	$(BIN)/python benchmarks/run.py

lint: install ## ruff check
	$(BIN)/ruff check .

# Resolve setup.cfg's ranges afresh in a scratch venv and pin what was installed.
lock: ## regenerate requirements/constraints.txt from setup.cfg's ranges
	@rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@{ echo "# Exact versions that 'make' installs with (pip install -c). Regenerate with 'make lock'."; \
		$(VENV)-lock/bin/python -m pip freeze --exclude-editable; } > requirements/constraints.txt.new
	@mv requirements/constraints.txt.new requirements/constraints.txt
	@rm -rf $(VENV)-lock
	@echo "Wrote requirements/constraints.txt; the next make installs from it."

clean: ## delete built assets, caches and stamps (keeps .venv, node_modules and the database)
	scripts/test-postgres.sh stop
	rm -rf marketplace/static/dist marketplace/static/assets .pytest_cache .ruff_cache .hypothesis \
		benchmarks/.work build *.egg-info $(VENV)/.*.stamp
	find . \( -path ./$(VENV) -o -path ./node_modules \) -prune -o -name __pycache__ -type d -print0 \
		| xargs -0 rm -rf

distclean: clean ## clean, and delete .venv, node_modules and instance/ (the local database)
	rm -rf $(VENV) node_modules instance

FORCE:
