# A newcomer needs only these two: `make serve` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test fuzz lint install clean

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

test: lint
	$(BIN)/pytest

# Before a release: schemathesis with many more requests per operation than `make test` sends.
FUZZ_EXAMPLES ?= 500
fuzz: $(STAMP)
	TALLY_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/test_fuzz.py -s --timeout 3600

clean:
	rm -rf $(VENV) .pytest_cache
