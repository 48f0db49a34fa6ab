# One entry point for everything. `make up` starts the platform; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: up serve test check format lint types deps dev-deps system-deps emulator

# Serving needs only requirements.txt; testing and checking add requirements-dev.txt.
$(BIN)/livestage: pyproject.toml requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev: $(BIN)/livestage requirements-dev.txt
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

deps: $(BIN)/livestage

dev-deps: $(VENV)/.dev

system-deps:
	scripts/system-deps.sh

up: deps
	$(BIN)/livestage up

test: system-deps dev-deps
	scripts/isolated.sh $(BIN)/pytest -q -p no:cacheprovider

format: dev-deps
	$(BIN)/ruff format src tests bench

lint: dev-deps
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

types: dev-deps
	$(BIN)/mypy

check: lint types test

emulator: deps
	$(BIN)/livestage emulator
