# OpenRisk — `make run` serves the app with a demo tenant; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export OPENRISK_PORT ?= 8000
LINT_PATHS := src tests $(wildcard benchmarks loadtests)
TEST_WORKERS ?= 3

.PHONY: run test lint format typecheck install dev clean screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

dev: $(VENV)/.dev-installed

run: install
	$(BIN)/openrisk db upgrade
	$(BIN)/openrisk seed
	@echo "OpenRisk: http://127.0.0.1:$(OPENRISK_PORT)  (API docs: /docs)"
	$(BIN)/openrisk serve --port $(OPENRISK_PORT)

lint: dev
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: dev
	$(BIN)/mypy

format: dev
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

# bytecode compiled once: the suite starts dozens of server and CLI processes, each of which
# would otherwise compile the package again (PYTHONDONTWRITEBYTECODE keeps it from caching);
# three workers per two cores, as much of the suite waits on servers, browsers and databases
test: lint typecheck
	$(BIN)/python -m compileall -q src tests benchmarks loadtests
	$(BIN)/pytest -n $(TEST_WORKERS)

# the pictures of docs/screenshots: a seeded server, headless Chromium, 1366 and 390 px wide
screenshots: dev
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest tests/e2e/test_screenshots.py -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache openrisk.db*
