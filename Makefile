# One set of targets for people and CI alike.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint typecheck unit bench clean browser

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.demo-installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

$(VENV)/.test-installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install -q -e '.[test,demo,postgres]'
	touch $@

## demo: set up and run the demo (bank of benign sample photos, scan of modified copies)
demo: $(VENV)/.demo-installed
	$(BIN)/python -m amparo.demo

## test: set up, lint (ruff; the layering contracts: lint-imports), type-check and run the whole
## test suite
test: $(VENV)/.test-installed browser lint typecheck
	$(BIN)/python -m pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports --no-cache

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

unit: $(VENV)/.test-installed
	$(BIN)/python -m pytest tests/unit -q

bench: $(BIN)/activate
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/hash_throughput.py

## browser: Debian's chromium + chromium-driver for the reviewer UI's browser tests (as root;
## elsewhere install them yourself, or those tests skip saying why)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }; } || \
	  echo "chromium/chromedriver not installed: the browser tests will skip"; }

clean:
	rm -rf $(VENV) amparo-data build dist *.egg-info .mypy_cache .pytest_cache .ruff_cache
