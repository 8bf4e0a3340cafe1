# Set-up and entry points. Every target creates .venv on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data
HOST ?= 127.0.0.1
PORT ?= 8000
FP_TRADES := $(DATA)/fundingpips-trades-short/test_task_trades_short.csv

.PHONY: venv install install-test run test unit bench bench-fronts bench-scale bench-hotpath bench-snapshots lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test,load]"
	touch $(VENV)/.installed $@

venv: $(BIN)/python
install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## make run: start the server on an embedded local Ray, replay real trades into it, keep serving
run: install
	$(BIN)/riskactors run $(FP_TRADES) --host $(HOST) --port $(PORT)

## make test: the whole suite (unit, integration on one local Ray, HTTP API, replay)
test: install-test
	$(BIN)/python -m pytest

unit: install-test
	$(BIN)/python -m pytest tests/unit

## make bench: the load test (see load_tests/README.md)
bench: install-test
	$(BIN)/python load_tests/run_bench.py --wrk-paced

## make bench-fronts: order checks with 1, 2 and 4 fronts (--workers) beside the bare baseline
bench-fronts: install-test
	$(BIN)/python load_tests/bench_fronts.py

## make bench-scale: the scale table of issue 11 at 1,000, 10,000 and 100,000 accounts (long: see load_tests/README.md)
bench-scale: install-test
	$(BIN)/python load_tests/scale.py

## make bench-hotpath: the hot path of issue 11 (bare vs server at 32/4/1 connections, Ray hop, fsync, check, journal; targets and latency budget)
bench-hotpath: install-test
	$(BIN)/python load_tests/bench_hotpath.py

## make bench-snapshots: checks while snapshots are written back to back against none (issue 11, p99 within 2x)
bench-snapshots: install-test
	$(BIN)/python load_tests/bench_snapshots.py

## make lint: ruff with the settings in pyproject.toml
lint: | $(BIN)/python
	$(BIN)/pip install --quiet "ruff>=0.17,<0.18"
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info
