"""`/healthz` for load balancers, and what app servers share (nothing but the database and the
private storage)."""

import datetime
import io
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone

from registrations.services.jobs import worker_heartbeat_record
from tests.jobs import worker_in_test

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

ROOT = Path(__file__).resolve().parent.parent
ALL_OK = {"database": "ok", "storage": "ok", "keys": "ok", "worker": "ok"}


def test_all_parts_up_is_200(client):
    worker_heartbeat_record(now=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == ALL_OK
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_no_worker_ever_is_503(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {**ALL_OK, "worker": "missing"}


def test_a_worker_silent_for_two_seal_periods_is_stale(client, settings):
    settings.AUDIT_SEAL_SECONDS = 60
    worker_heartbeat_record(now=timezone.now() - datetime.timedelta(seconds=119))
    assert client.get("/healthz").json()["worker"] == "ok"
    worker_heartbeat_record(now=timezone.now() - datetime.timedelta(seconds=100))  # not older
    worker_heartbeat_record(now=timezone.now() - datetime.timedelta(seconds=121))  # kept newer
    assert client.get("/healthz").json()["worker"] == "ok"


def test_a_heartbeat_older_than_two_seal_periods_is_503(client, settings):
    settings.AUDIT_SEAL_SECONDS = 60
    worker_heartbeat_record(now=timezone.now() - datetime.timedelta(seconds=121))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"] == "stale"


def test_the_job_worker_records_its_heartbeat(client):
    with worker_in_test():
        call_command("run_worker", batch=True, stdout=io.StringIO())
    assert client.get("/healthz").json() == ALL_OK


def test_a_database_that_fails_is_503_and_liveness_still_200(client, monkeypatch):
    from registrations import health

    def broken_cursor(*args, **kwargs):
        raise DatabaseError("down")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "database": "unavailable",
        "storage": "ok",
        "keys": "error",
        "worker": "unknown",
    }
    live = client.get("/healthz?live")
    assert live.status_code == 200 and live.json() == {"process": "ok"}


def test_the_health_check_needs_no_sign_in_and_says_nothing_secret(client, settings):
    worker_heartbeat_record(now=timezone.now())
    body = client.get("/healthz").content.decode()
    for secret in (settings.SECRET_KEY, settings.BLIND_INDEX_KEY, *settings.FIELD_ENCRYPTION_KEY):
        assert secret not in body
    assert set(client.get("/healthz").json().values()) == {"ok"}


# Nothing in one server's memory ---------------------------------------------------------------


def test_sessions_live_in_the_database_and_no_cache_is_in_process_memory():
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"
    for cache in settings.CACHES.values():
        assert "locmem" not in cache["BACKEND"].lower()
        assert "filebased" not in cache["BACKEND"].lower()


def test_no_code_relies_on_django_s_cache():
    """Throttles, locks and counters are rows of the database, which every server shares: a
    cache would be one server's (and the configured one is a dummy)."""
    pattern = re.compile(r"from django\.core\.cache|django\.core\.cache import|cache_page|caches\[")
    found = [
        str(path.relative_to(ROOT))
        for folder in ("registrations", "simreg")
        for path in (ROOT / folder).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []


# The production server's settings ----------------------------------------------------------------


def test_gunicorn_logs_paths_without_query_strings_and_loads_the_app_first(monkeypatch):
    import multiprocessing
    import runpy

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_BIND", raising=False)
    # The configuration sets PROMETHEUS_MULTIPROC_DIR for the server it starts: set it here
    # through monkeypatch, so that it is taken back after the test and other tests' metrics
    # stay in this process.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(ROOT / "var" / "prometheus" / "test"))
    config = runpy.run_path(str(ROOT / "simreg" / "gunicorn.conf.py"))
    assert config["wsgi_app"] == "simreg.wsgi:application"
    assert config["bind"] == ["127.0.0.1:8000"]
    assert config["workers"] == 2 * multiprocessing.cpu_count() + 1
    assert config["worker_class"] == "sync" and config["preload_app"] is True
    log_format = config["access_log_format"]
    assert "%(U)s" in log_format, "the path"
    for with_query in ("%(r)s", "%(q)s", "%(f)s"):  # request line, query string, referrer
        assert with_query not in log_format

    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert runpy.run_path(str(ROOT / "simreg" / "gunicorn.conf.py"))["workers"] == 3
