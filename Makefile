# simreg: `make run` serves the app with demo users; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run serve worker lock audit-deps test test-sqlite test-postgres test-s3 lint format keys install install-test messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Installs are reproducible: every package pinned with its hashes (requirements/*.lock, made
# from pyproject.toml by `make lock`), and pip refuses anything else.
$(VENV)/.installed: requirements/app.lock | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/app.lock
	touch $@

$(VENV)/.installed-test: requirements/test.lock $(VENV)/.installed
	$(BIN)/pip install --quiet --require-hashes -r requirements/test.lock
	touch $@

lock: | $(BIN)/python
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 --quiet \
	  -o requirements/app.lock
	$(BIN)/uv pip compile pyproject.toml --extra test --generate-hashes --python-version 3.11 \
	  --quiet -o requirements/test.lock

# The installed packages against the vulnerability snapshot that the test extras install
# (offline; it says what it could not check).
audit-deps: $(VENV)/.installed-test
	$(BIN)/python .ci/audit_deps.py

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

.env:
	$(BIN)/python -m simreg.keys .env

keys: $(VENV)/.installed .env

# The job worker (audit verifications and exports from the web, checkpoints, purges) runs in the
# background next to the server, and stops with it: Ctrl+C, or the server exiting.
run: $(VENV)/.installed .env
	$(BIN)/python -m simreg.keys .env
	mkdir -p var
	DJANGO_DEBUG=1 $(BIN)/python manage.py migrate --no-input
	DJANGO_DEBUG=1 $(BIN)/python manage.py seed_demo
	DJANGO_DEBUG=1 $(BIN)/python manage.py run_worker & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	  trap 'exit 130' INT TERM; \
	  DJANGO_DEBUG=1 $(BIN)/python manage.py runserver $(HOST):$(PORT)

# The production stack on this machine: gunicorn (simreg/gunicorn.conf.py) with DEBUG off against
# DATABASE_URL (default: db.sqlite3, with the keys of .env), static files collected for whitenoise,
# the database migrated (as the owner when MIGRATION_DATABASE_URL is set), and the job worker
# beside it; Ctrl+C stops both. Production settings refuse plain http: SERVE_HTTP turns that off
# for loopback here, and only here. Behind a TLS proxy none of it is set (README: Deployment).
SERVE_HTTP := DJANGO_DEBUG=0 SECURE_SSL_REDIRECT=0 SESSION_COOKIE_SECURE=0 CSRF_COOKIE_SECURE=0 \
  SECURE_HSTS_SECONDS=0 DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost GUNICORN_BIND=$(HOST):$(PORT)

serve: $(VENV)/.installed .env
	$(BIN)/python -m simreg.keys .env
	mkdir -p var
	$(SERVE_HTTP) $(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(SERVE_HTTP) $(BIN)/python manage.py migrate --no-input
	$(SERVE_HTTP) $(BIN)/python manage.py run_worker & worker=$$!; \
	  trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	  trap 'exit 130' INT TERM; \
	  $(SERVE_HTTP) $(BIN)/gunicorn -c simreg/gunicorn.conf.py

# The job worker alone, in the foreground (another terminal, or a second worker).
worker: $(VENV)/.installed .env
	mkdir -p var
	DJANGO_DEBUG=1 $(BIN)/python manage.py run_worker

# The whole suite on SQLite, then again on PostgreSQL (started here when it is not running), then
# the document tests with the copies in a bucket of an S3-compatible server on loopback.
test: $(VENV)/.installed-test
	bash .ci/browser.sh
	$(MAKE) test-sqlite
	$(MAKE) test-postgres
	$(MAKE) test-s3

test-sqlite: $(VENV)/.installed-test
	mkdir -p var
	env -u DATABASE_URL $(BIN)/python -m pytest

test-postgres: $(VENV)/.installed-test
	mkdir -p var
	@DATABASE_URL="$$(bash .ci/postgres.sh)" && export DATABASE_URL && \
	  export DATABASE_APP_ROLE="$${DATABASE_APP_ROLE:-simreg_app}" && \
	  if [ "$$DATABASE_URL" = "unavailable" ]; then \
	    echo "*** PostgreSQL is not available here: the PostgreSQL run was NOT done ***"; \
	  else echo "Running the suite on PostgreSQL"; $(BIN)/python -m pytest; fi

# The tests of document copies and exports, with the private storage in a bucket of moto's S3
# server on 127.0.0.1 (.ci/s3.sh starts it and, if it did, it is stopped after), on PostgreSQL
# when it is there (two app servers share it: tests/test_two_servers.py), else on SQLite.
S3_TESTS := tests/test_documents_storage.py tests/test_documents_copies.py tests/test_key_rotation.py \
  tests/test_retention.py tests/test_counter_flow.py tests/test_no_plaintext_leak.py \
  tests/test_two_servers.py

test-s3: $(VENV)/.installed-test
	mkdir -p var
	@S3="$$(bash .ci/s3.sh)" && \
	  if [ "$$S3" = "unavailable" ]; then \
	    echo "*** No S3-compatible server here: the S3 run was NOT done ***"; exit 0; fi; \
	  trap 'bash .ci/s3.sh stop' EXIT; \
	  DB="$$(bash .ci/postgres.sh)" || exit 1; \
	  if [ "$$DB" = "unavailable" ]; then unset DATABASE_URL; DBNAME=SQLite; \
	  else export DATABASE_URL="$$DB" DATABASE_APP_ROLE="$${DATABASE_APP_ROLE:-simreg_app}"; \
	    DBNAME=PostgreSQL; fi; \
	  echo "Running the document tests with a bucket at $$S3, on $$DBNAME"; \
	  SIMREG_TEST_S3_ENDPOINT="$$S3" SIMREG_TEST_DB_NAME="$${SIMREG_TEST_DB_NAME:-test_s3}" \
	    $(BIN)/python -m pytest $(S3_TESTS)

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
