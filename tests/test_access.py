"""Deny by default: every page needs a login and a role; sign-ins are audit events."""

import pytest

from registrations.models import AuditEvent
from tests.factories import make_user
from tests.urls import app_url_patterns

pytestmark = pytest.mark.django_db

# `metrics` is not signed into: it takes the scraper's bearer token (tests/test_operations.py).
PUBLIC = {"login", "healthz", "set_language", "metrics", "favicon.ico"}


def test_every_page_redirects_an_anonymous_visitor_to_the_login(client, url_world):
    checked = 0
    for name, pattern in app_url_patterns():
        if name in PUBLIC:
            continue
        response = client.get(url_world.path(name, pattern))
        assert response.status_code == 302, name
        assert response["Location"].startswith("/login/"), name
        checked += 1
    assert checked >= 25


def test_a_signed_in_user_without_a_role_is_refused_everywhere(client, url_world):
    """Real records behind every address: the role check alone stands in the way, and it
    answers 403 (a page that takes POST only is posted to; an old address is followed)."""
    client.force_login(url_world.users["nobody"])
    let_through = []
    for name, pattern in app_url_patterns():
        if name in PUBLIC or name == "logout":
            continue
        path = url_world.path(name, pattern)
        response = client.get(path, follow=True)
        if response.status_code == 405:
            response = client.post(path, follow=True)
        if response.status_code != 403:
            let_through.append(f"{name} {path} -> {response.status_code}")
    assert let_through == []


def test_each_role_sees_its_own_home(client, staff, supervisor, compliance):
    client.force_login(staff)
    page = client.get("/").content.decode()
    assert "Drafts to resume" in page and "submissions wait for review" not in page
    client.force_login(supervisor)
    page = client.get("/").content.decode()
    assert "submissions wait for review" in page and "Drafts to resume" not in page
    client.force_login(compliance)
    page = client.get("/").content.decode()
    assert "events recorded" in page or "event recorded" in page
    assert "Drafts to resume" not in page


def test_a_superuser_without_a_role_gets_the_administration_only(client, store):
    admin = make_user(None, is_superuser=True, is_staff=True)
    client.force_login(admin)
    page = client.get("/").content.decode()
    assert "Open administration" in page
    assert "Drafts to resume" not in page and "wait for review" not in page


def test_sign_in_sign_out_and_a_failed_sign_in_are_audit_events(client, staff):
    client.post("/login/", {"username": "counter", "password": "wrong"}, REMOTE_ADDR="10.1.2.3")
    client.post("/login/", {"username": "counter", "password": "correct horse battery staple"})
    client.post("/logout/")
    actions = list(
        AuditEvent.objects.filter(actor=staff).order_by("id").values_list("action", "ip")
    )
    assert actions[0] == ("login_failed", "10.1.2.3")
    assert [a for a, _ in actions[1:]] == ["login", "logout"]
    failed = AuditEvent.objects.get(action="login_failed")
    assert "wrong" not in repr(failed.details) + failed.reason


def test_an_unknown_sign_in_name_is_recorded_as_a_pseudonym_never_as_typed(client, db):
    """A name that belongs to nobody is often a password typed into the wrong box."""
    for _ in range(2):
        client.post("/login/", {"username": "Tr0ub4dor&3", "password": "x"})
    events = list(AuditEvent.objects.filter(action="login_failed"))
    assert len(events) == 2
    assert all(e.actor is None for e in events)
    assert events[0].actor_username == events[1].actor_username  # still countable
    assert events[0].actor_username.startswith("unknown-")
    assert "Tr0ub4dor" not in repr(list(AuditEvent.objects.values()))


def test_healthz_reports_each_part_without_secrets(client, db, settings, private_storage):
    from django.utils import timezone

    from registrations.services.jobs import worker_heartbeat_record

    worker_heartbeat_record(now=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"database": "ok", "storage": "ok", "keys": "ok", "worker": "ok"}
    assert settings.BLIND_INDEX_KEY not in response.content.decode()


def test_the_login_page_switches_to_traditional_chinese(client, db):
    response = client.post("/language/", {"language": "zh-hant", "next": "/login/"}, follow=True)
    assert response.status_code == 200
    assert '<html lang="zh-hant">' in response.content.decode()


def test_pages_for_signed_in_staff_are_never_cached(client, staff):
    client.force_login(staff)
    assert "no-store" in client.get("/")["Cache-Control"]


def test_the_counter_home_runs_a_constant_number_of_queries(client, store, staff, supervisor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import make_returned

    def returned_record():
        make_returned(store=store, created_by=staff, reviewer=supervisor)

    client.force_login(staff)
    returned_record()
    client.get("/")
    with CaptureQueriesContext(connection) as few:
        client.get("/")
    for _ in range(12):
        returned_record()
    with CaptureQueriesContext(connection) as many:
        page = client.get("/").content.decode()
    assert len(many) == len(few)
    assert "Document unreadable" in page


def test_repeated_failed_sign_ins_lock_the_user_name_not_the_store(client, staff, settings):
    settings.SIGN_IN_MAX_FAILURES = 3
    for _ in range(3):
        client.post("/login/", {"username": "counter", "password": "wrong"}, REMOTE_ADDR="10.0.0.9")
    response = client.post(
        "/login/",
        {"username": "counter", "password": "correct horse battery staple"},
        REMOTE_ADDR="10.0.0.9",
    )
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session
    for _ in range(5):
        client.post("/login/", {"username": "counter", "password": "wrong"})
    refused = AuditEvent.objects.filter(action="login_failed", reason="locked")
    assert refused.count() == 1  # hammering a locked name does not flood the log

    # A colleague at the same counter (same address) still signs in.
    colleague = make_user(None, username="colleague")
    assert colleague.pk
    other = client.post(
        "/login/",
        {"username": "colleague", "password": "correct horse battery staple"},
        REMOTE_ADDR="10.0.0.9",
    )
    assert other.status_code == 302


def test_the_lock_ends_by_itself(client, staff, settings):
    from django.utils import timezone

    from registrations import selectors

    settings.SIGN_IN_MAX_FAILURES = 2
    settings.SIGN_IN_LOCK_MINUTES = 15
    for _ in range(2):
        client.post("/login/", {"username": "counter", "password": "wrong"})
    now = timezone.now()
    assert selectors.sign_in_locked_until(username="counter", now=now) is not None
    later = now + timezone.timedelta(minutes=16)
    assert selectors.sign_in_locked_until(username="counter", now=later) is None


def test_pages_carry_a_strict_content_security_policy(client, staff):
    client.force_login(staff)
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_the_admin_sign_in_page_has_the_same_lock(client, settings):
    settings.SIGN_IN_MAX_FAILURES = 3
    make_user(None, username="root", is_superuser=True, is_staff=True)
    for _ in range(3):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})
    response = client.post(
        "/admin/login/", {"username": "root", "password": "correct horse battery staple"}
    )
    assert response.status_code == 200
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_behind_the_proxy_the_audit_log_records_the_client_address(client, staff, settings):
    settings.CLIENT_IP_FROM_FORWARDED_FOR = True
    client.post(
        "/login/",
        {"username": "counter", "password": "wrong"},
        REMOTE_ADDR="10.0.0.1",
        HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7",
    )
    assert AuditEvent.objects.get(action="login_failed").ip == "203.0.113.7"


def test_signing_out_says_so_and_a_wrong_password_gets_a_plain_message(client, staff):
    client.force_login(staff)
    page = client.post("/logout/", follow=True).content.decode()
    assert "You are signed out." in page
    page = client.post("/login/", {"username": "counter", "password": "nope"}).content.decode()
    assert "The user name or password is not correct." in page
