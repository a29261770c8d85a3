# carebell: `make demo` runs everything on SQLite with the simulated phone and
# mailbox; `make test` runs the whole suite on SQLite and on PostgreSQL.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | cksum | cut -d' ' -f1)
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
PORT ?= 8000

.PHONY: install demo test test-sqlite test-postgres lint format bench faults lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	CAREBELL_DEBUG=1 $(BIN)/carebell demo --port $(PORT)

test: lint test-sqlite test-postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test-sqlite: $(STAMP)
	CAREBELL_DEBUG=1 CAREBELL_DATA_DIR=var/test $(BIN)/pytest -m "not postgres_only" -p no:cacheprovider

# The PostgreSQL run is never skipped: an unreachable server fails here.
test-postgres: $(STAMP)
	CAREBELL_DEBUG=1 CAREBELL_DATA_DIR=var/test CAREBELL_DATABASE_URL=$(POSTGRES_URL) \
		$(BIN)/pytest -p no:cacheprovider

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_rules.py
	$(BIN)/python benchmarks/bench_render.py

# The fault suite's long form on its own PostgreSQL database (README, "Fault suite");
# its short form runs in test-postgres.
faults: $(STAMP)
	$(BIN)/python -m tests.faults --messages 5000

# Refresh the exact pins after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/carebell-lock && $(PYTHON) -m venv /tmp/carebell-lock
	/tmp/carebell-lock/bin/pip install --quiet -e ".[dev]"
	/tmp/carebell-lock/bin/pip freeze --exclude-editable | sort > requirements.lock

clean:
	rm -rf $(VENV) var/test
