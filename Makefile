# Two entry points: `make demo` runs a local network, `make test` runs every check.
# Both set themselves up on a fresh machine (Python 3.11+).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch goes in first and on its own, so pip never replaces it with another build. Point pip at a
# CPU-only index (PIP_INDEX_URL / PIP_EXTRA_INDEX_URL) on a machine without a GPU to save gigabytes.
TORCH ?= torch==2.13.0

.PHONY: setup demo test lint typecheck unit clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

demo: setup
	$(PY) scripts/demo.py

lint: setup
	$(VENV)/bin/ruff check coordinator worker shared baseline bench tests scripts

typecheck: setup
	$(VENV)/bin/mypy

# Two processes: the end-to-end, browser and training tests one after another in one of them
# (tests/conftest.py), everything else in the other. TEST_PROCESSES=0 runs them all in one.
TEST_PROCESSES ?= 2

unit: setup
	$(PY) -m pytest -n $(TEST_PROCESSES)

test: lint typecheck unit

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
