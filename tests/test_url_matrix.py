"""The authorisation matrix, as a test: every URL pattern of the site, the admin's included, asked
for by every role, against a table of who gets in. Every page that shows a record is an audit
event of that very request (invariant 4): one per page shown.

A URL missing from the table fails the test, and so does a row whose URL is gone: whoever adds
a page says here who may open it.
"""

from __future__ import annotations

from dataclasses import dataclass
from http.cookies import SimpleCookie

import pytest
from django.db import transaction
from django.http.response import HttpResponseBase
from django.test import Client

from registrations.models import AuditEvent
from tests.urls import World, url_patterns

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

ROLES = ("anonymous", "staff", "supervisor", "compliance", "superuser")

# Outcomes other than a status code.
LOGIN = "login"  # sent to the app's sign-in page
ADMIN_LOGIN = "admin-login"  # sent to the admin's sign-in page
GET, POST = "GET", "POST"

# Who gets what. Pages are asked for with GET; actions that take POST only are sent an empty
# POST (in a savepoint rolled back afterwards), which the roles allowed in answer with the form's
# errors (400) or a redirect, and the others are refused before reading it.
#
#   URL name (its pattern when unnamed):
#       (method, anonymous, staff, supervisor, compliance, superuser)
MATRIX: dict[str, tuple] = {
    # Open to anyone.
    "login": (GET, 200, 302, 302, 302, 302),
    "healthz": (GET, 200, 200, 200, 200, 200),
    # For the scraper's bearer token only (METRICS_TOKEN), never a session: without the token
    # configured, as here, the page does not exist (tests/test_operations.py has the rest).
    "metrics": (GET, 404, 404, 404, 404, 404),
    "favicon.ico": (GET, 301, 301, 301, 301, 301),
    "set_language": (GET, 302, 302, 302, 302, 302),
    # Any signed-in user.
    "home": (GET, LOGIN, 200, 200, 200, 200),
    "logout": (POST, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    "session-status": (GET, LOGIN, 200, 200, 200, 200),
    "session-keep-alive": (POST, LOGIN, 302, 302, 302, 302),
    # The second factor's pages: for those who need one and have not passed it yet (here they
    # have: sent on); counter staff sign in without one.
    "second-factor": (GET, LOGIN, 403, 302, 302, 302),
    "second-factor-recovery": (GET, LOGIN, 403, 302, 302, 302),
    "second-factor-enrol": (GET, LOGIN, 403, 302, 302, 302),
    # Counter staff.
    "decisions-seen": (POST, LOGIN, 302, 403, 403, 403),
    "counter-new": (GET, LOGIN, 200, 403, 403, 403),
    "counter-find": (GET, LOGIN, 200, 403, 403, 403),
    "counter-records": (GET, LOGIN, 200, 403, 403, 403),
    "counter-record": (GET, LOGIN, 200, 403, 403, 403),
    "counter-resume": (GET, LOGIN, 302, 403, 403, 403),
    "counter-materials": (GET, LOGIN, 200, 403, 403, 403),
    "counter-channel": (GET, LOGIN, 200, 403, 403, 403),
    "counter-identity": (GET, LOGIN, 200, 403, 403, 403),
    # The identity step's early check: an empty post checks nothing and answers an empty fragment.
    "counter-identity-check": (POST, LOGIN, 200, 403, 403, 403),
    "counter-receipt": (GET, LOGIN, 200, 403, 403, 403),
    "counter-update": (GET, LOGIN, 200, 403, 403, 403),
    "counter-terminate": (GET, LOGIN, 200, 403, 403, 403),
    "counter-discard": (GET, LOGIN, 200, 403, 403, 403),
    # Serving a customer of any store (tests/test_counter_service_*.py).
    "counter-service": (GET, LOGIN, 200, 403, 403, 403),
    "counter-loss": (GET, LOGIN, 200, 403, 403, 403),
    "counter-replace": (GET, LOGIN, 200, 403, 403, 403),
    "counter-subject-report": (GET, LOGIN, 200, 403, 403, 403),
    # Counter staff of the store while the record is open, supervisors of the store always.
    "document-copy": (GET, LOGIN, 200, 200, 403, 403),
    # Its old address, before copies had their own: sends on to the one above.
    "counter-document": (GET, LOGIN, 302, 302, 302, 302),
    # Supervisors.
    "review-queue": (GET, LOGIN, 403, 200, 403, 403),
    "review-dashboard": (GET, LOGIN, 403, 200, 403, 403),
    "review-notifications": (GET, LOGIN, 403, 200, 403, 403),
    "review-notifications-retry": (POST, LOGIN, 403, 302, 403, 403),
    "review-detail": (GET, LOGIN, 403, 200, 403, 403),
    "review-reveal": (POST, LOGIN, 403, 400, 403, 403),
    "review-decide": (POST, LOGIN, 403, 400, 403, 403),
    "review-reveal-change": (POST, LOGIN, 403, 400, 403, 403),
    "review-decide-change": (POST, LOGIN, 403, 400, 403, 403),
    "staff-list": (GET, LOGIN, 403, 200, 403, 403),
    "staff-password": (GET, LOGIN, 403, 200, 403, 403),
    "staff-second-factor-reset": (POST, LOGIN, 403, 302, 403, 403),
    # Compliance admins.
    "audit-list": (GET, LOGIN, 403, 403, 200, 403),
    "audit-export": (POST, LOGIN, 403, 403, 302, 403),
    "audit-verify": (POST, LOGIN, 403, 403, 302, 403),
    "audit-job": (GET, LOGIN, 403, 403, 200, 403),
    "audit-job-status": (GET, LOGIN, 403, 403, 200, 403),
    "audit-job-download": (GET, LOGIN, 403, 403, 410, 403),
    # Breach records (tests/test_compliance_breaches.py): compliance admins only.
    "breach-list": (GET, LOGIN, 403, 403, 200, 403),
    "breach-new": (GET, LOGIN, 403, 403, 200, 403),
    "breach-detail": (GET, LOGIN, 403, 403, 200, 403),
    "breach-edit": (GET, LOGIN, 403, 403, 200, 403),
}


# Signed in without access to the admin, sent to its sign-in page; not signed in, to the app's
# (the admin's pages of a model are not exempt from the site's login requirement).
NOT_ADMIN = (LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN)


def _admin_model(prefix: str, *, add: int = 200, delete: int = 200) -> dict[str, tuple]:
    """The admin's pages of one model, for superusers."""
    pages = {
        f"admin:{prefix}_changelist": 200,
        f"admin:{prefix}_add": add,
        f"admin:{prefix}_history": 200,
        f"admin:{prefix}_delete": delete,
        f"admin:{prefix}_change": 200,
        # The object's bare address, sent on to its change page.
        f"admin/{prefix.replace('_', '/', 1)}/<path:object_id>/": 302,
    }
    return {key: (GET, *NOT_ADMIN, code) for key, code in pages.items()}


MATRIX |= {
    # The Django admin: superusers only. Its sign-in page is open; its "view on site" shortcut
    # (admin:view_on_site) is not served at all.
    "admin:login": (GET, 200, 200, 200, 200, 302),
    "admin:index": (GET, *[ADMIN_LOGIN] * 4, 200),
    "admin:logout": (POST, ADMIN_LOGIN, 302, 302, 302, LOGIN),
    "admin:password_change": (GET, *[ADMIN_LOGIN] * 4, 200),
    "admin:password_change_done": (GET, *[ADMIN_LOGIN] * 4, 200),
    "admin:autocomplete": (GET, *[ADMIN_LOGIN] * 4, 403),
    "admin:jsi18n": (GET, *[ADMIN_LOGIN] * 4, 200),
    "admin:app_list": (GET, *[ADMIN_LOGIN] * 4, 200),
    **_admin_model("registrations_store"),
    **_admin_model("registrations_user"),
    "admin:auth_user_password_change": (GET, *NOT_ADMIN, 200),
    **_admin_model("auth_group"),
    **_admin_model("registrations_auditevent", add=403, delete=403),
    "admin/(?P<url>.*)$": (GET, *[ADMIN_LOGIN] * 4, 404),
}

# Answers that show a page: a refused form shows the record again (400), a job whose export
# is gone shows the job (410).
SHOWING = {200, 400, 410}

# The audit actions of reading: a page shown is one of these, once.
READ_ACTIONS = {
    AuditEvent.Action.VIEWED,
    AuditEvent.Action.LISTED,
    AuditEvent.Action.SEARCHED,
    AuditEvent.Action.RECEIPT_VIEWED,
}


class _Undo(Exception):
    """Rolls back the savepoint around one request."""


def outcome(response: HttpResponseBase):
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith("/login/"):
            return LOGIN
        if location.startswith("/admin/login/"):
            return ADMIN_LOGIN
    return response.status_code


def body(response: HttpResponseBase) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode(errors="replace")
    return response.content.decode(errors="replace")


@dataclass
class Seen:
    """What one request did: its outcome, and the audit's side of it."""

    outcome: object
    shown: set[str]  # references of the fixtures' records on the page
    events: list[AuditEvent]


def ask(client: Client, method: str, path: str, references: set[str]) -> Seen:
    """One request in a savepoint rolled back afterwards; the client's cookies restored."""
    cookies = {key: morsel.value for key, morsel in client.cookies.items()}
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        with transaction.atomic():
            response = client.get(path) if method == GET else client.post(path, {})
            # A refusal or a redirect shows nothing of a record, whatever address it repeats.
            text = body(response) if response.status_code in SHOWING else ""
            seen = Seen(
                outcome=outcome(response),
                shown={reference for reference in references if reference in text},
                events=list(AuditEvent.objects.filter(id__gt=last).order_by("id")),
            )
            raise _Undo
    except _Undo:
        return seen
    finally:
        client.cookies = SimpleCookie()
        for key, value in cookies.items():
            client.cookies[key] = value


def audit_problems(key: str, method: str, path: str, seen: Seen, world: World) -> list[str]:
    """What the audit log lacks for this request, if anything."""
    problems = []
    if seen.shown and not seen.events:
        problems.append(f"shows {sorted(seen.shown)} and writes no audit event")
    reference = world.reference_for(key) if "<reference:reference>" in path else ""
    if reference in seen.shown and not any(
        event.registration_reference == reference for event in seen.events
    ):
        problems.append(f"shows record {reference} and no event names it")
    reads = [event.action for event in seen.events if event.action in READ_ACTIONS]
    if method == GET and len(reads) > 1:
        problems.append(f"one page shown, {len(reads)} read events: {reads}")
    return problems


def test_every_url_is_in_the_matrix_and_every_row_is_a_url():
    keys = [key for key, _pattern in url_patterns()]
    unknown = sorted(set(keys) - set(MATRIX))
    assert not unknown, "URLs missing from MATRIX (say which roles may open them): " + ", ".join(
        unknown
    )
    gone = sorted(set(MATRIX) - set(keys))
    assert not gone, "MATRIX rows of URLs that no longer exist: " + ", ".join(gone)


def test_every_role_gets_what_the_matrix_says_and_every_read_is_audited(url_world):
    world = url_world
    clients = {}
    for role in ROLES:
        clients[role] = Client()
        if world.users[role] is not None:
            clients[role].force_login(world.users[role])
    references = {registration.reference for registration in world.registrations()}
    wrong, unaudited, observed = [], [], {}
    for key, pattern in url_patterns():
        if key not in MATRIX:
            continue  # the test above names it
        method, *expected = MATRIX[key]
        path = world.path(key, pattern)
        row = []
        for role, want in zip(ROLES, expected, strict=True):
            seen = ask(clients[role], method, path, references)
            row.append(seen.outcome)
            if seen.outcome != want:
                wrong.append(f"{role}: {method} {path} ({key}) -> {seen.outcome}, expected {want}")
            unaudited += [
                f"{role}: {method} {path} ({key}) {problem}"
                for problem in audit_problems(key, method, path, seen, world)
            ]
        observed[key] = (method, *row)
    assert not wrong, "\n".join(wrong)
    assert not unaudited, "\n".join(unaudited)
