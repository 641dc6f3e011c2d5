# One entry point for developers and CI.
#   make run   - start Patchwarden on SQLite with this machine enrolled by a real agent
#   make test  - install what the tests need, then run the whole test suite
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: run test install test-deps lint bench-ingest

$(BIN)/.installed: pyproject.toml
	scripts/ensure-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/patchwarden quickstart

test-deps:
	scripts/install-test-deps

test: install test-deps
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/vermin -t=3.9- --violations --no-tips src/patchwarden/agent src/patchwarden/protocol

bench-ingest: install
	$(BIN)/python bench/ingest.py
