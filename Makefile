# Cairn: `make run` starts a server and a worker on the embedded SQLite
# default; `make test` runs the whole suite, `make test-stress` its long
# cases. All set up .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# What running needs, and what the tests need on top: `make run` installs only the first.
RUNTIME_STAMP := $(VENV)/.runtime-stamp
TEST_STAMP := $(VENV)/.test-stamp
DATA ?= .cairn
PORT ?= 8080

.PHONY: install install-test run test test-stress bench clean

# setuptools explains at length that an editable install of folders mapped
# into one package (domain/ -> cairn.domain, ...) uses an import hook: that
# note alone is silenced, nothing else.
EDITABLE := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e

$(RUNTIME_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --upgrade pip
	$(EDITABLE) .
	@touch $(RUNTIME_STAMP)

$(TEST_STAMP): $(RUNTIME_STAMP)
	$(EDITABLE) ".[test]"
	@touch $(TEST_STAMP)

install: $(RUNTIME_STAMP)

install-test: $(TEST_STAMP)

run: install
	@$(BIN)/python -m cairn.first_run --data-dir $(DATA) --port $(PORT)

# Two workers: much of the suite waits on I/O (fsync, long polls, subprocesses).
test: install-test
	$(BIN)/python -m pytest -q -n 2

# The long cases (marked slow: 64 claimers, PostgreSQL restarted under load), on PostgreSQL only.
test-stress: install-test
	$(BIN)/python -m pytest -q -n 2 --run-slow -m slow -k "not sqlite"

# BENCH_ARGS scales it: e.g. make bench BENCH_ARGS="--rss-tasks 1000000 --profile"
bench: install-test
	test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
