# A newcomer needs only these two: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test test-unit test-api test-e2e fuzz lint install clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/tally serve

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

test: lint browser
	$(BIN)/pytest

# The tiers: pure rules (seconds, no DynamoDB), handlers through the gateway on moto, the
# product through `tally serve` (and the browser). `pytest -m cost` runs the cost tests.
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit

test-api: $(STAMP)
	$(BIN)/pytest tests/api

test-e2e: $(STAMP) browser
	$(BIN)/pytest tests/e2e

# Before a release: schemathesis with many more requests per operation than `make test` sends.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	TALLY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/e2e/test_fuzz.py -s --timeout 3600

clean:
	rm -rf $(VENV) .pytest_cache
