"""A session left without a request for SESSION_IDLE_MINUTES ends by itself; a warning a minute
before offers to stay signed in. SESSION_COOKIE_AGE still ends any session after sign-in."""

import re
import time

import pytest

from registrations.middleware import LAST_ACTIVITY_KEY, SIGNED_IN_AT_KEY
from registrations.models import AuditEvent

pytestmark = pytest.mark.django_db

IDLE = 15 * 60


def set_times(client, *, idle_for: int | None = None, signed_in_for: int | None = None) -> None:
    """Make the session look as if its last request was `idle_for` seconds ago."""
    session = client.session
    now = int(time.time())
    if idle_for is not None:
        session[LAST_ACTIVITY_KEY] = now - idle_for
    if signed_in_for is not None:
        session[SIGNED_IN_AT_KEY] = now - signed_in_for
    session.save()


@pytest.fixture
def signed_in(client, staff):
    client.force_login(staff)
    assert client.get("/").status_code == 200
    return client


def test_the_default_limit_is_15_minutes(settings):
    assert settings.SESSION_IDLE_MINUTES == 15


def test_signing_in_starts_the_clocks_in_the_session(client, staff):
    before = int(time.time())
    client.post("/login/", {"username": "counter", "password": "correct horse battery staple"})
    session = client.session
    assert session[SIGNED_IN_AT_KEY] >= before and session[LAST_ACTIVITY_KEY] >= before


def test_a_session_idle_past_the_limit_is_signed_out_with_a_message(signed_in, staff):
    set_times(signed_in, idle_for=IDLE + 1)
    response = signed_in.get("/counter/find/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/counter/find/"
    assert "_auth_user_id" not in signed_in.session
    page = signed_in.get(response["Location"]).content.decode()
    assert "You were signed out after 15 minutes without activity." in page
    logout = AuditEvent.objects.get(action=AuditEvent.Action.LOGOUT)
    assert logout.actor == staff
    assert logout.details == {"reason": "idle", "idle_minutes": 15}


def test_an_idle_session_opening_the_sign_in_page_sees_it_with_the_message(signed_in):
    set_times(signed_in, idle_for=IDLE + 60)
    page = signed_in.get("/login/").content.decode()
    assert "You were signed out after 15 minutes without activity." in page
    assert 'name="password"' in page


def test_activity_keeps_the_session(signed_in):
    set_times(signed_in, idle_for=IDLE - 60)
    assert signed_in.get("/").status_code == 200
    assert int(time.time()) - signed_in.session[LAST_ACTIVITY_KEY] <= 1
    set_times(signed_in, idle_for=IDLE - 60)
    assert signed_in.get("/counter/find/").status_code == 200
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.LOGOUT).exists()


def test_the_limit_follows_the_setting(signed_in, settings):
    settings.SESSION_IDLE_MINUTES = 2
    set_times(signed_in, idle_for=119)
    assert signed_in.get("/").status_code == 200
    set_times(signed_in, idle_for=121)
    assert signed_in.get("/").status_code == 302
    assert "_auth_user_id" not in signed_in.session


def test_no_limit_when_the_setting_is_zero(signed_in, settings):
    settings.SESSION_IDLE_MINUTES = 0
    set_times(signed_in, idle_for=10 * 3600)
    page = signed_in.get("/").content.decode()
    assert "data-idle-seconds-left" not in page and "idle.js" not in page


def test_the_session_still_ends_session_cookie_age_after_sign_in(signed_in, settings, staff):
    set_times(signed_in, idle_for=10, signed_in_for=settings.SESSION_COOKIE_AGE + 1)
    response = signed_in.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    page = signed_in.get(response["Location"]).content.decode()
    assert "Your session has ended. Sign in again to continue." in page
    logout = AuditEvent.objects.get(action=AuditEvent.Action.LOGOUT)
    assert logout.details == {"reason": "session_age", "seconds": settings.SESSION_COOKIE_AGE}


def test_pages_carry_the_time_left_and_the_warning_without_inline_script(signed_in):
    set_times(signed_in, idle_for=40)
    page = signed_in.get("/").content.decode()
    left = int(re.search(r'data-idle-seconds-left="(\d+)"', page).group(1))
    assert IDLE - 41 <= left <= IDLE
    assert 'data-idle-warning-seconds="60"' in page
    assert 'data-session-url="/account/session/"' in page
    assert '<script src="/static/registrations/idle.js"></script>' in page
    warning = re.search(r'<div [^>]*id="idle-warning".*?</div>', page, re.S).group(0)
    assert 'action="/account/session/keep-alive/"' in warning
    assert 'name="csrfmiddlewaretoken"' in warning and "Stay signed in" in warning
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # no inline script


def test_the_session_status_tells_the_time_left_and_is_not_activity(signed_in):
    set_times(signed_in, idle_for=10 * 60)
    response = signed_in.get("/account/session/")
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {"signed_in", "seconds_left"}
    assert data["signed_in"] is True and 5 * 60 - 2 <= data["seconds_left"] <= 5 * 60
    assert int(time.time()) - signed_in.session[LAST_ACTIVITY_KEY] >= 10 * 60 - 1


def test_the_session_status_after_the_limit_signs_out_and_says_so(signed_in):
    set_times(signed_in, idle_for=IDLE + 1)
    response = signed_in.get("/account/session/")
    assert response.status_code == 401
    assert response.json() == {"signed_in": False}
    page = signed_in.get("/login/").content.decode()
    assert "You were signed out after 15 minutes without activity." in page


def test_stay_signed_in_renews_the_session_and_shows_no_record_data(signed_in):
    set_times(signed_in, idle_for=IDLE - 30)
    response = signed_in.post("/account/session/keep-alive/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["signed_in"] is True
    assert IDLE - 2 <= response.json()["seconds_left"] <= IDLE
    assert set(response.json()) == {"signed_in", "seconds_left"}
    set_times(signed_in, idle_for=IDLE - 30)
    # Without a script: back to the page it came from, never to another site.
    response = signed_in.post("/account/session/keep-alive/", {"next": "/counter/find/"})
    assert response["Location"] == "/counter/find/"
    response = signed_in.post("/account/session/keep-alive/", {"next": "https://evil.example/"})
    assert response["Location"] == "/"
    assert signed_in.get("/account/session/keep-alive/").status_code == 405


def test_stay_signed_in_after_the_limit_is_too_late(signed_in):
    set_times(signed_in, idle_for=IDLE + 5)
    response = signed_in.post("/account/session/keep-alive/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401
    assert "_auth_user_id" not in signed_in.session


def test_a_second_tab_is_kept_alive_by_the_first(client, staff):
    """Tabs share the session: a request from one renews the time the other reads."""
    client.force_login(staff)
    client.get("/")
    set_times(client, idle_for=IDLE - 50)
    seconds = client.get("/account/session/").json()["seconds_left"]
    assert seconds <= 50
    client.get("/counter/find/")  # the other tab
    assert client.get("/account/session/").json()["seconds_left"] >= IDLE - 1
