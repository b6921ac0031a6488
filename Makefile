# simreg: `make run` serves the app with demo users; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-sqlite test-postgres lint format keys install install-test messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install --quiet ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

.env:
	$(BIN)/python -m simreg.keys .env

keys: $(VENV)/.installed .env

run: $(VENV)/.installed .env
	mkdir -p var
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 $(BIN)/python manage.py seed_demo
	DJANGO_DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The whole suite on SQLite, then again on PostgreSQL (started here when it is not running).
test: $(VENV)/.installed-test
	bash .ci/browser.sh
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

test-sqlite: $(VENV)/.installed-test
	mkdir -p var
	env -u DATABASE_URL $(BIN)/python -m pytest

test-postgres: $(VENV)/.installed-test
	mkdir -p var
	@DATABASE_URL="$$(bash .ci/postgres.sh)" && export DATABASE_URL && \
	  if [ "$$DATABASE_URL" = "unavailable" ]; then \
	    echo "*** PostgreSQL is not available here: the PostgreSQL run was NOT done ***"; \
	  else echo "Running the suite on PostgreSQL"; $(BIN)/python -m pytest; fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

messages: $(VENV)/.installed
	DJANGO_DEBUG=1 $(BIN)/python manage.py makemessages -l zh_Hant --no-obsolete \
	  --ignore=.venv --ignore=tests --ignore=benchmarks --ignore=test-artifacts
	DJANGO_DEBUG=1 $(BIN)/python manage.py compilemessages -l zh_Hant

clean:
	rm -rf $(VENV) var staticfiles
