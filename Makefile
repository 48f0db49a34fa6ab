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

# The 100ms browser SDK, bundled once into one ES module that livestage serves from its own origin
# (its ESM build imports other packages by bare name), and the 100ms server SDK the emulator's
# contract tests drive: exact versions from vendor/package.json, never a lock file.
HMS_SDK := src/livestage/web/static/vendor/hms-video-store.js

vendor/node_modules/.installed: vendor/package.json
	cd vendor && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $@

$(HMS_SDK): vendor/node_modules/.installed
	vendor/node_modules/.bin/esbuild vendor/node_modules/@100mslive/hms-video-store/dist/index.js \
		--bundle --format=esm --platform=browser --target=es2020 --minify --log-level=warning \
		--outfile=$@

deps: $(BIN)/livestage $(HMS_SDK)

dev-deps: $(VENV)/.dev $(HMS_SDK)

system-deps:
	scripts/system-deps.sh

up: deps
	$(BIN)/livestage up

test: system-deps dev-deps
	scripts/test.sh

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
