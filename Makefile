# Cairn: `make run` starts a server and a worker on the embedded SQLite
# default; `make test` runs the whole suite, `make test-stress` its long
# cases. All set up .venv first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= .cairn

.PHONY: install run test test-stress bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	@$(BIN)/python -m cairn.first_run --data-dir $(DATA)

# Two workers: much of the suite waits on I/O (fsync, long polls, subprocesses).
test: install
	$(BIN)/python -m pytest -q -n 2

# The long cases (marked slow: 64 claimers, PostgreSQL restarted under load), on PostgreSQL only.
test-stress: install
	$(BIN)/python -m pytest -q -n 2 --run-slow -m slow -k "not sqlite"

# BENCH_ARGS scales it: e.g. make bench BENCH_ARGS="--rss-tasks 1000000 --profile"
bench: install
	test -x $(BIN)/py-spy || $(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache
