"""Operations: JSON log lines tied to a request id and holding nothing of what a user typed or
who they are (their id only), and Prometheus metrics behind a bearer token."""

from __future__ import annotations

import datetime
import io
import json
import logging
import re

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from gunicorn.glogging import SafeAtoms
from prometheus_client import REGISTRY

from registrations import roles
from registrations.audit import audit_record
from registrations.models import AuditEvent
from registrations.services.jobs import worker_heartbeat_record
from registrations.tasks import audit_exports_purge
from simreg.logs import JsonFormatter, task_context
from tests.factories import make_user

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-for-tests-0123456789"
HKID = "A123456(3)"
METRIC_NAMES = (
    "simreg_http_request_duration_seconds",
    "simreg_audit_events_appended_total",
    "simreg_sign_in_failures_total",
    "simreg_job_queue_depth",
    "simreg_worker_heartbeat_age_seconds",
)


@pytest.fixture
def log_lines():
    """Every log line written while the test runs, as the production handler writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [line for line in stream.getvalue().splitlines() if line]
    finally:
        root.removeHandler(handler)


def request_line(lines: list[str], path: str) -> dict:
    entries = [json.loads(line) for line in lines]
    found = [e for e in entries if e["logger"] == "simreg.request" and e.get("path") == path]
    assert len(found) == 1, entries
    return found[0]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_production_logs_are_json_by_default():
    """Without DEBUG (as in production), the console writes JSON lines."""
    assert django_settings.LOG_FORMAT == "json"
    assert django_settings.LOGGING["handlers"]["console"]["formatter"] == "json"
    assert django_settings.MIDDLEWARE[0] == "registrations.middleware.RequestLogMiddleware"


def test_a_request_log_line_holds_its_request_id_and_nothing_a_user_typed(client, log_lines):
    """A sign-in form posted with a query string: the log line is JSON, carries the id of the
    response header, and holds neither the query string nor a form value."""
    response = client.post(
        "/login/?next=/counter/find/&q=QUERYMARKER",
        {"username": "chan.tai.man", "password": "FORMVALUE-" + HKID},
    )
    lines = log_lines()
    entry = request_line(lines, "/login/")
    assert entry["request_id"] == response["X-Request-ID"]
    assert entry["method"] == "POST"
    assert entry["status"] == response.status_code
    assert isinstance(entry["duration_ms"], float)
    assert entry["user_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])
    text = "\n".join(lines)
    for secret in ("QUERYMARKER", "next=", "chan.tai.man", "FORMVALUE", HKID, "csrf"):
        assert secret not in text


def test_a_signed_in_request_logs_the_user_id_never_the_name(client, log_lines):
    user = make_user(roles.COUNTER_STAFF, username="mei.wong.staff")
    client.force_login(user)
    response = client.get("/counter/find/", {"q": HKID})
    entry = request_line(log_lines(), "/counter/find/")
    assert entry["user_id"] == user.pk
    assert entry["request_id"] == response["X-Request-ID"]
    text = "\n".join(log_lines())
    assert "mei.wong.staff" not in text
    assert "A123456" not in text


def test_django_request_errors_never_write_the_request(client, log_lines):
    """Django's own "Not Found" warning passes the request object along: it is left out."""
    response = client.get("/no-such-page/", {"q": "QUERYMARKER"}, HTTP_X_API_KEY="HEADERMARKER")
    assert response.status_code == 404
    entries = [json.loads(line) for line in log_lines()]
    django_lines = [e for e in entries if e["logger"] == "django.request"]
    assert django_lines, entries
    assert django_lines[0]["request_id"] == response["X-Request-ID"]
    text = "\n".join(log_lines())
    for secret in ("QUERYMARKER", "HEADERMARKER", "WSGIRequest", "status_code"):
        assert secret not in text


def test_a_safe_request_id_from_the_proxy_is_kept(client):
    response = client.get("/healthz?live", HTTP_X_REQUEST_ID="proxy-42.abc_DEF")
    assert response["X-Request-ID"] == "proxy-42.abc_DEF"


@pytest.mark.parametrize(
    "junk", ["has spaces in it", "x" * 500, "line\nbreak", "quote\"'<>", "", "tab\there"]
)
def test_a_junk_request_id_is_replaced(client, log_lines, junk):
    response = client.get("/healthz?live", HTTP_X_REQUEST_ID=junk)
    given = response["X-Request-ID"]
    assert given != junk
    assert re.fullmatch(r"[0-9a-f]{32}", given)
    assert request_line(log_lines(), "/healthz")["request_id"] == given


def test_job_log_lines_carry_the_task_id():
    record = logging.LogRecord("registrations.tasks", logging.INFO, __file__, 1, "done", (), None)
    with task_context("task-123"):
        entry = json.loads(JsonFormatter().format(record))
    assert entry["task_id"] == "task-123"
    assert "request_id" not in entry


def test_gunicorn_access_lines_hold_the_request_fields_only():
    atoms = SafeAtoms(
        {
            "h": "203.0.113.9",
            "m": "GET",
            "U": "/counter/find/",
            "q": "q=QUERYMARKER",
            "s": "200",
            "M": "12",
            "a": "AGENTMARKER",
            "{x-request-id}o": "abc123",
        }
    )
    record = logging.LogRecord(
        "gunicorn.access", logging.INFO, __file__, 1, '%(h)s "%(U)s?%(q)s" %(a)s', (), None
    )
    record.args = atoms
    entry = json.loads(JsonFormatter().format(record))
    assert entry["path"] == "/counter/find/"
    assert entry["status"] == 200
    assert entry["duration_ms"] == 12
    assert entry["request_id"] == "abc123"
    text = json.dumps(entry)
    for secret in ("QUERYMARKER", "AGENTMARKER", "203.0.113.9"):
        assert secret not in text


def test_metrics_do_not_exist_without_a_token(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


def test_metrics_refuse_a_wrong_token(client, settings):
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


def test_a_superuser_session_alone_does_not_open_metrics(client, settings):
    superuser = make_user(None, is_superuser=True, is_staff=True, username="root")
    client.force_login(superuser)
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401


def test_metrics_with_the_token_list_every_metric(client, settings):
    settings.METRICS_TOKEN = TOKEN
    client.get("/healthz?live")
    before = AuditEvent.objects.count()
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    for name in METRIC_NAMES:
        assert name in text
    # By view name and status class, never by path.
    assert 'view="healthz"' in text
    assert 'status="2xx"' in text
    assert "/healthz" not in text
    # Shows no record: no audit event.
    assert AuditEvent.objects.count() == before


def test_the_audit_appends_counter_counts_each_event(db):
    user = make_user(roles.COUNTER_STAFF)
    name = "simreg_audit_events_appended_total"
    before = sample(name, action="viewed")
    audit_record(actor=user, action=AuditEvent.Action.VIEWED)
    assert sample(name, action="viewed") == before + 1


def test_the_failed_sign_ins_counter_counts_wrong_passwords_and_refusals(client, settings):
    settings.SIGN_IN_MAX_FAILURES = 1
    make_user(roles.COUNTER_STAFF, username="leung")
    name = "simreg_sign_in_failures_total"
    wrong, locked = sample(name, reason="password"), sample(name, reason="locked")
    client.post("/login/", {"username": "leung", "password": "wrong password"})
    assert sample(name, reason="password") == wrong + 1
    client.post("/login/", {"username": "leung", "password": "wrong password"})
    assert sample(name, reason="locked") == locked + 1
    assert sample(name, reason="password") == wrong + 1


def test_queue_depth_and_heartbeat_age_are_read_at_scrape_time(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> str:
        return client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()

    assert "simreg_job_queue_depth 0.0" in scrape()
    # No worker ever: no value.
    assert not re.search(r"^simreg_worker_heartbeat_age_seconds ", scrape(), re.M)
    audit_exports_purge.enqueue()
    worker_heartbeat_record(now=timezone.now() - datetime.timedelta(seconds=90))
    text = scrape()
    assert "simreg_job_queue_depth 1.0" in text
    age = float(re.search(r"^simreg_worker_heartbeat_age_seconds (\S+)$", text, re.M).group(1))
    assert 89 <= age < 120
