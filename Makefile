# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= var/demo
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint typecheck unit docs venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# `shelfwise demo` tunes its recommender for tuning.demo_budget_seconds (180 s) on the first
# run and reuses the choice afterwards (SHELFWISE_TUNING__DEMO_BUDGET_SECONDS=0: off)
demo: $(VENV)/.installed
	$(BIN)/shelfwise demo --dir $(DEMO_DIR) --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(VENV)/.installed
	$(BIN)/mypy

unit: $(VENV)/.installed
	$(BIN)/pytest $(PYTEST_ARGS)

# The documentation site (mkdocs.yml); --strict turns every broken link or warning into a
# failure (not with --quiet, which hides the warnings from the count). Offline: reference
# and benchmark pages are generated from the code and the JSON.
docs: $(VENV)/.installed
	DISABLE_MKDOCS_2_WARNING=true NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d var/site

test: lint typecheck unit docs

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
