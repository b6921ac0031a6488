"""The site's URL patterns, walked once for every test that asks each page something, and a
world of real records to fill their parameters with: a page then refuses a role because of the
role alone, never because the record does not exist."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from registrations import roles
from registrations.audit import audit_record
from registrations.models import AuditEvent, AuditJob, BreachRecord, PendingChange, Registration
from registrations.services.jobs import worker_heartbeat_record
from tests.factories import (
    make_approved,
    make_complete_draft,
    make_document_copy,
    make_pending_change,
    make_registration,
    make_returned,
    make_store,
    make_user,
)


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


def app_url_patterns() -> Iterator[tuple[str, str]]:
    """The same, outside the Django admin (which has its own staff-only sign-in)."""
    for key, pattern in url_patterns():
        if not pattern.startswith("admin/"):
            yield key, pattern


@dataclass
class World:
    users: dict  # role -> user (None for an anonymous visitor)
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
        if key in {
            "counter-update",
            "counter-terminate",
            "counter-service",
            "counter-loss",
            "counter-replace",
            "counter-subject-report",
        }:
            return self.approved.reference
        if key in {"counter-record"} or "change" in key:
            return self.changed.reference
        return self.draft.reference

    def path(self, key: str, pattern: str) -> str:
        """The pattern with its parameters filled from the world's records."""
        admin_model = re.match(r"admin/(\w+)/(\w+)/", pattern)
        ids = {
            "document-copy": self.objects["copy"],
            "counter-document": self.objects["copy"],
            "audit-job": self.objects["verify_job"],
            "audit-job-status": self.objects["verify_job"],
            "audit-job-download": self.objects["export_job"],
            "breach-detail": self.objects["breach"],
            "breach-edit": self.objects["breach"],
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


def make_world() -> World:
    """One store with a user of each role (one without any) and a record in every state."""
    store = make_store(code="MK01", name="Mong Kok")
    staff = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    compliance = make_user(roles.COMPLIANCE_ADMIN, username="compliance")
    superuser = make_user(None, is_superuser=True, is_staff=True, username="root")
    nobody = make_user(None, username="nobody")
    draft = make_complete_draft(store=store, created_by=staff)
    returned = make_returned(store=store, created_by=staff, reviewer=supervisor)
    pending = make_registration(store=store, created_by=staff, status="pending")
    make_document_copy(pending)
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    changed = make_approved(store=store, created_by=staff, reviewer=supervisor)
    change = make_pending_change(
        changed, requested_by=staff, new={"address": "Flat 1, 2 New Street, Sha Tin"}
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
    breach = BreachRecord.objects.create(
        found_at=timezone.now(),
        systems_affected="Counter tablets",
        records_affected=3,
        description="A tablet left on a bus",
        recorded_by=compliance,
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
            "nobody": nobody,
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
            "breach": breach.pk,
            "store": store.pk,
            "user": staff.pk,
            "group": Group.objects.get(name=roles.COUNTER_STAFF).pk,
            "auditevent": event.pk,
        },
    )
