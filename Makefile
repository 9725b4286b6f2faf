# symmv: two commands on a fresh machine -- `make demo` and `make test`. Both set up everything first.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONWARNINGS := ignore::UserWarning
DEMO_SOURCE ?= data/demo-source
DEMO_OUT ?= data/symmv-demo
SYMMV_RELEASE ?= $(abspath ../shared/data/symmv-release)
RELEASE_OUT ?= data/symmv-release
SONGS ?= 20
PYTEST_ARGS ?=

.PHONY: setup demo demo-corpus build build-release test test-all bench clean help

help:
	@echo "make demo   - set up, build the offline demo source, run build-symmv on it ($(DEMO_OUT))"
	@echo "make test   - set up and run the test suite (slow/GPU tests skipped; 'make test-all' runs slow ones)"
	@echo "make bench  - run the benchmarks under bench/ (JSON in bench/results/)"

setup:
	@bash scripts/setup.sh

demo-corpus: setup
	$(PY) -m symmv.cli demo-corpus --out $(DEMO_SOURCE) --n-songs $(SONGS)

build: setup
	$(PY) -m symmv.cli build --source-dir $(DEMO_SOURCE) --out $(DEMO_OUT)

# The SymMV release's 999 piano covers through the same pipeline (MIDI read as notes, beats from notes):
# the real music V-MusProd's Melody/Accompaniment stages train on. ~1-2 s per song on 2 cores.
build-release: setup
	$(PY) -m symmv.cli build --source symmv-release --source-dir $(SYMMV_RELEASE) --out $(RELEASE_OUT) \
	  --transcriber midi-file --beat-tracker notes

demo: demo-corpus build
	@$(PY) -m symmv.cli info --root $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q -m "not slow and not gpu and not network" $(PYTEST_ARGS)

test-all: setup
	$(PY) -m pytest -q -m "not gpu and not network" $(PYTEST_ARGS)

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf data/symmv-demo .prefect .pytest_cache
