"""The authorisation matrix, as a test: every URL pattern of the site, the admin's included, asked
for by every role, against a table of who gets in. Every page that shows a record is an audit
event of that very request (invariant 4): one per page shown.

A URL missing from the table fails the test, and so does a row whose URL is gone: whoever adds
a page says here who may open it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.cookies import SimpleCookie

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.http.response import HttpResponseBase
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from registrations import roles
from registrations.audit import audit_record
from registrations.models import AuditEvent, AuditJob, PendingChange, Registration
from registrations.services.jobs import worker_heartbeat_record
from tests.factories import (
    make_approved,
    make_complete_draft,
    make_document_copy,
    make_registration,
    make_store,
    make_user,
)

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
    "counter-record": (GET, LOGIN, 200, 403, 403, 403),
    "counter-resume": (GET, LOGIN, 302, 403, 403, 403),
    "counter-materials": (GET, LOGIN, 200, 403, 403, 403),
    "counter-channel": (GET, LOGIN, 200, 403, 403, 403),
    "counter-identity": (GET, LOGIN, 200, 403, 403, 403),
    "counter-receipt": (GET, LOGIN, 200, 403, 403, 403),
    "counter-update": (GET, LOGIN, 200, 403, 403, 403),
    "counter-terminate": (GET, LOGIN, 200, 403, 403, 403),
    "counter-discard": (GET, LOGIN, 200, 403, 403, 403),
    # Counter staff of the store while the record is open, supervisors of the store always.
    "document-copy": (GET, LOGIN, 200, 200, 403, 403),
    # Its old address, before copies had their own: sends on to the one above.
    "counter-document": (GET, LOGIN, 302, 302, 302, 302),
    # Supervisors.
    "review-queue": (GET, LOGIN, 403, 200, 403, 403),
    "review-dashboard": (GET, LOGIN, 403, 200, 403, 403),
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


def url_patterns(resolver=None, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(key, pattern) of every URL pattern, through every include: the key is the name
    (namespaced, as `reverse` takes it), or the pattern itself when it has no name."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            inner = ":".join(filter(None, [namespace, entry.namespace]))
            yield from url_patterns(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            pattern = prefix + str(entry.pattern)
            name = ":".join(filter(None, [namespace, entry.name])) if entry.name else ""
            yield name or pattern, pattern


@dataclass
class World:
    users: dict
    draft: Registration
    returned: Registration
    pending: Registration
    approved: Registration
    changed: Registration
    change: PendingChange
    objects: dict  # what a URL's ids stand for

    def registrations(self) -> list[Registration]:
        return [self.draft, self.returned, self.pending, self.approved, self.changed]

    def reference_for(self, key: str) -> str:
        """A registration in the state the page is for."""
        if key in {"counter-channel", "counter-resume"}:
            return self.returned.reference
        if key in {"counter-receipt", "review-detail", "review-reveal", "review-decide"}:
            return self.pending.reference
        if key in {"counter-update", "counter-terminate"}:
            return self.approved.reference
        if key in {"counter-record"} or "change" in key:
            return self.changed.reference
        return self.draft.reference

    def path(self, key: str, pattern: str) -> str:
        """The pattern with its parameters filled from the fixtures."""
        admin_model = re.match(r"admin/(\w+)/(\w+)/", pattern)
        ids = {
            "document-copy": self.objects["copy"],
            "counter-document": self.objects["copy"],
            "audit-job": self.objects["verify_job"],
            "audit-job-status": self.objects["verify_job"],
            "audit-job-download": self.objects["export_job"],
        }
        fills: dict[str, Callable[[], str]] = {
            "<reference:reference>": lambda: self.reference_for(key),
            "<int:change_id>": lambda: str(self.change.pk),
            "<int:pk>": lambda: str(ids.get(key, self.users["staff"].pk)),
            "<path:object_id>": lambda: str(self.objects[admin_model.group(2)]),
            "<id>": lambda: str(self.users["staff"].pk),
            "^(?P<app_label>registrations|auth)/$": lambda: "registrations/",
            "(?P<url>.*)$": lambda: "no-such-page/",
        }
        path = pattern
        for placeholder, fill in fills.items():
            if placeholder in path:
                path = path.replace(placeholder, fill())
        assert "<" not in path and "(?P" not in path, f"{key}: no value for {path}"
        return "/" + path


@pytest.fixture
def world(db) -> World:
    store = make_store(code="MK01", name="Mong Kok")
    staff = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    compliance = make_user(roles.COMPLIANCE_ADMIN, username="compliance")
    superuser = make_user(None, is_superuser=True, is_staff=True, username="root")
    draft = make_complete_draft(store=store, created_by=staff)
    returned = make_registration(
        store=store,
        created_by=staff,
        status="returned",
        step=3,
        reviewer=supervisor,
        decided_at=timezone.now(),
        reason_code="document_unreadable",
    )
    pending = make_registration(store=store, created_by=staff, status="pending")
    make_document_copy(pending)
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    changed = make_approved(store=store, created_by=staff, reviewer=supervisor)
    change = PendingChange.objects.create(
        registration=changed,
        kind=PendingChange.Kind.UPDATE,
        changed_fields=["address"],
        new_address="Flat 1, 2 New Street, Sha Tin",
        requested_by=staff,
    )
    # An event naming a record: the audit pages show its reference.
    event = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, registration=approved)
    verify_job = AuditJob.objects.create(
        kind=AuditJob.Kind.VERIFY, requested_by=compliance, state=AuditJob.State.FINISHED
    )
    export_job = AuditJob.objects.create(
        kind=AuditJob.Kind.EXPORT,
        format="csv",
        requested_by=compliance,
        state=AuditJob.State.FINISHED,
    )
    # A job worker is running: /healthz answers 200.
    worker_heartbeat_record(now=timezone.now())
    return World(
        users={
            "anonymous": None,
            "staff": staff,
            "supervisor": supervisor,
            "compliance": compliance,
            "superuser": superuser,
        },
        draft=draft,
        returned=returned,
        pending=pending,
        approved=approved,
        changed=changed,
        change=change,
        objects={
            "copy": draft.documents.get().pk,
            "verify_job": verify_job.pk,
            "export_job": export_job.pk,
            "store": store.pk,
            "user": staff.pk,
            "group": Group.objects.get(name=roles.COUNTER_STAFF).pk,
            "auditevent": event.pk,
        },
    )


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


def test_every_role_gets_what_the_matrix_says_and_every_read_is_audited(world):
    clients = {}
    for role, user in world.users.items():
        clients[role] = Client()
        if user is not None:
            clients[role].force_login(user)
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
