# Two commands on a fresh machine: `make run` (the whole workflow on the synthetic default) and
# `make test`. Both create the Python environment in .venv when it is missing or out of date.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
CONFIG ?= config/config.yaml

.PHONY: run test test-slow smoke lint bench clean env

env: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,report,cluster]'
	touch $@

run: env
	$(BIN)/phm-eval run --config $(CONFIG) --cores $(CORES)

smoke: env
	$(BIN)/phm-eval run --config config/smoke.yaml --cores $(CORES)

test: env
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

test-slow: env
	$(BIN)/python -m pytest -q -m slow

lint: env
	$(BIN)/ruff check .

bench: env
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf results/* results-*/ .snakemake
