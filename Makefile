# Quick start: `make run` (a local ir on the embedded SQLite default) and `make test` (every check CI runs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TSTAMP := $(VENV)/.installed-test

.PHONY: run test lint typecheck contracts unit bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "ir needs Python 3.11 or newer; found " + sys.version.split()[0])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(TSTAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

run: $(STAMP)
	$(BIN)/ir db upgrade
	$(BIN)/ir run-local
	$(BIN)/ir serve

lint: $(TSTAMP)
	$(BIN)/ruff check ir tests bench
	$(BIN)/ruff format --check ir tests bench

typecheck: $(TSTAMP)
	$(BIN)/mypy

contracts: $(TSTAMP)
	$(BIN)/lint-imports

unit: $(TSTAMP)
	$(BIN)/pytest

test: lint typecheck contracts unit

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
