"""Bad input never gets a 500: every page, every role, junk in every field (invariant 8).

Each request runs in a savepoint that is rolled back afterwards, so that a junk request that
happens to be accepted (a decision, a submission, a sign-out) leaves the records as they were
for the next one. Server errors are collected, not raised, so that one does not hide the rest.
"""

from __future__ import annotations

import dataclasses
import html
import itertools
import logging
import re
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import pytest
from django import forms
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.http.response import HttpResponseBase
from django.template import Template
from django.test import Client
from django.test.utils import _TestState
from django.urls import reverse

from registrations import policy, roles
from registrations.forms import accounts as accounts_forms
from registrations.forms import compliance as compliance_forms
from registrations.forms import counter as counter_forms
from registrations.forms import documents as documents_forms
from registrations.forms import review as review_forms
from registrations.models import (
    AuditEvent,
    AuditJob,
    DocumentCopy,
    PendingChange,
    Person,
    Registration,
)
from tests.factories import (
    PNG,
    VALID_EID,
    channel_form,
    identity_form,
    make_approved,
    make_complete_draft,
    make_document_copy,
    make_pending_change,
    make_person,
    make_registration,
    make_returned,
    make_store,
    make_user,
    materials_form,
    upload,
)
from tests.urls import app_url_patterns

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

ACTION = ("action",)  # the step buttons
FORM_MODULES = (accounts_forms, compliance_forms, counter_forms, documents_forms, review_forms)

PASSWORD = "correct horse battery staple"

JUNK = (
    "",
    " ",
    "x" * 10000,
    "\x00",
    "𠮷" * 50,
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "-1",
    "0",
    "99999999999999999999",
    "1e309",
    "NaN",
    "2026-02-30",
    "0001-01-01",
    "9999-12-31T23:59",
    "../../etc/passwd",
    "%00",
    "=cmd|' /C calc'!A0",
    # In no list of choices.
    "no_such_choice",
    # Past the year 9999 once moved to UTC.
    "9999-12-31T23:59:59-14:00",
)
# For pages and branches that the per-field sweep already covers with the full list.
SHORT_JUNK = ("", "x" * 10000, "\x00", "no_such_choice")

# Query parameters and buttons that no form class declares.
EXTRA_PARAMETERS = (
    "action",
    "next",
    "language",
    "page",
    "changes_page",
    "before",
    "after",
    "format",
)


def _form_classes() -> list[type[forms.BaseForm]]:
    """Every form the app defines, in every concern's module."""
    return [
        value
        for module in FORM_MODULES
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, forms.BaseForm)
        and value.__module__ == module.__name__
    ]


def _file_field_names() -> set[str]:
    return {
        name
        for form_class in _form_classes()
        for name, form_field in form_class.base_fields.items()
        if isinstance(form_field, forms.FileField)
    }


FORM_FIELDS = {name: f for cls in _form_classes() for name, f in cls.base_fields.items()}
KNOWN_FIELDS = tuple(
    sorted({name for cls in _form_classes() for name in cls.base_fields} | set(EXTRA_PARAMETERS))
)
FILE_FIELDS = _file_field_names()


def test_the_field_list_covers_the_forms():
    """A guard on the collection itself: a form renamed away would silently drop out."""
    for name in ("name_en", "identity_copy", "since", "submitted_at", "anchor", "username"):
        assert name in KNOWN_FIELDS
    assert sorted(FILE_FIELDS) == [
        "identity_copy",
        "proof_of_address",
        "renewed_copy",
        "representative_copy",
    ]


# Test data --------------------------------------------------------------------------------------


@dataclass
class World:
    store: object
    other_store: object
    users: dict  # role -> user (None for an anonymous visitor)
    draft: Registration
    company_draft: Registration
    pending: Registration
    approved: Registration
    changed: Registration
    change: PendingChange
    draft_copy: DocumentCopy

    def reference_for(self, name: str) -> str:
        """A registration in the state the page is for."""
        if name in {"review-detail", "review-reveal", "review-decide", "counter-receipt"}:
            return self.pending.reference
        if name in {"counter-update", "counter-terminate"}:
            return self.approved.reference
        if name in {"review-decide-change", "counter-record"}:
            return self.changed.reference
        return self.draft.reference

    def path(self, name: str, pattern: str, *, reference: str | None = None) -> str:
        path = pattern.replace("<reference:reference>", reference or self.reference_for(name))
        path = path.replace("<int:pk>", str(self.draft_copy.pk))
        path = path.replace("<int:change_id>", str(self.change.pk))
        assert "<" not in path, path
        return "/" + path


ROLES = ("staff", "supervisor", "compliance", "nobody", "anonymous")


@pytest.fixture
def world(db) -> World:
    store = make_store(code="MK01", name="Mong Kok")
    other_store = make_store(code="CWB1", name="Causeway Bay")
    staff = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    compliance = make_user(roles.COMPLIANCE_ADMIN, username="compliance")
    nobody = make_user(None, username="nobody")
    draft = make_complete_draft(store=store, created_by=staff)
    company_draft = make_complete_draft(
        store=store,
        created_by=staff,
        customer=make_person(
            kind=Person.Kind.COMPANY,
            document_type="business_registration",
            document_number="12345678",
            date_of_birth=None,
            nationality="",
        ),
    )
    pending = make_registration(store=store, created_by=staff, status="pending")
    make_document_copy(pending)
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    make_document_copy(approved)
    changed = make_approved(store=store, created_by=staff, reviewer=supervisor)
    change = make_pending_change(
        changed,
        requested_by=staff,
        new={"address": "Flat 1, 2 New Street, Sha Tin", "contact_number": "+85298765432"},
    )
    return World(
        store=store,
        other_store=other_store,
        users={
            "staff": staff,
            "supervisor": supervisor,
            "compliance": compliance,
            "nobody": nobody,
            "anonymous": None,
        },
        draft=draft,
        company_draft=company_draft,
        pending=pending,
        approved=approved,
        changed=changed,
        change=change,
        draft_copy=draft.documents.get(),
    )


# Sending requests and collecting server errors --------------------------------------------------


class _Undo(Exception):
    """Raised to roll back the savepoint around one request."""


def _short(value, limit: int = 70) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def _describe(data) -> str:
    if data is None:
        return "(no data)"
    if isinstance(data, bytes):
        return _short(data)
    if isinstance(data, dict):
        return "{" + ", ".join(f"{k}={_short(v, 50)}" for k, v in data.items()) + "}"
    return _short(data)


def _where(exc_info) -> str:
    """The exception and the last frame that raised it, one line."""
    if not exc_info or exc_info[0] is None:
        return "(no exception recorded)"
    _type, exc, tb = exc_info
    frames = traceback.extract_tb(tb)
    last = frames[-1] if frames else None
    at = (
        f" at {last.filename.split('/site-packages/')[-1]}:{last.lineno} in {last.name}"
        if last
        else ""
    )
    app = next(
        (
            f" (app: {f.filename.rsplit('/', 2)[-2]}/{f.filename.rsplit('/', 1)[-1]}:{f.lineno} "
            f"in {f.name})"
            for f in reversed(frames)
            if "/registrations/" in f.filename
        ),
        "",
    )
    return f"{type(exc).__name__}: {_short(str(exc), 160)}{at}{app}"


@dataclass
class Prober:
    """One client per role; every request counted, server errors collected."""

    client: Client
    role: str
    requests: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (where, request)

    def send(
        self,
        method: str,
        path: str,
        *,
        data=None,
        body: bytes | None = None,
        language: str = "",
        inside: Callable[[HttpResponseBase], None] | None = None,
        **kwargs,
    ) -> HttpResponseBase:
        """Send `data` (a dict, files allowed) or a raw `body`, in `language` if given;
        `inside` looks at the response and the database before the savepoint is rolled back."""
        cookies = {key: morsel.value for key, morsel in self.client.cookies.items()}
        label = f"{self.role}: {method} {path} {_describe(body if body is not None else data)}"
        if kwargs:
            label += " " + ", ".join(f"{k}={_short(v, 40)}" for k, v in kwargs.items())
        if language:
            label += f" [language {language}]"
            self.client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
        self.requests += 1
        try:
            with transaction.atomic():
                if body is not None:
                    content_type = kwargs.pop("content_type", "application/x-www-form-urlencoded")
                    response = self.client.generic(
                        method, path, body, content_type=content_type, **kwargs
                    )
                elif method == "GET":
                    response = self.client.get(path, data or {}, **kwargs)
                elif method == "POST":
                    response = self.client.post(path, data or {}, **kwargs)
                else:
                    response = self.client.generic(method, path, **kwargs)
                self._check(response, label, path)
                if inside is not None:
                    inside(response)
                raise _Undo
        except _Undo:
            return response
        finally:
            # A sign-in, a sign-out or a language switch must not leak into the next request.
            self.client.cookies = SimpleCookie()
            for key, value in cookies.items():
                self.client.cookies[key] = value

    def _check(self, response, label: str, path: str) -> None:
        exc_info = getattr(response, "exc_info", None)
        # The health check answers 503 by design when a part fails (here: no job worker runs).
        healthz_down = (
            response.status_code == 503 and path.split("?")[0] == "/healthz" and not exc_info
        )
        if response.status_code >= 500 and not healthz_down:
            self.failures.append((_where(exc_info), f"{label} -> {response.status_code}"))
            return
        if response.streaming:
            # An export or a document is produced while it is sent: read it to the end.
            try:
                b"".join(response.streaming_content)
            except Exception as exc:
                where = _where((type(exc), exc, exc.__traceback__))
                self.failures.append((where, f"{label} -> error while streaming the response"))


def _report(probers: list[Prober]) -> str:
    """Server errors grouped by where they happen, with up to three requests each."""
    by_where: dict[str, list[str]] = defaultdict(list)
    for prober in probers:
        for where, request in prober.failures:
            by_where[where].append(request)
    total = sum(len(requests) for requests in by_where.values())
    sent = sum(p.requests for p in probers)
    lines = [f"{total} of {sent} requests got a server error, in {len(by_where)} place(s):"]
    for where, requests in sorted(by_where.items(), key=lambda item: -len(item[1])):
        lines.append(f"- {where}  [{len(requests)} request(s)], e.g.:")
        lines.extend(f"      {request}" for request in requests[:3])
    return "\n".join(lines)


def _assert_no_server_error(*probers: Prober) -> None:
    failures = [f for p in probers for f in p.failures]
    assert not failures, _report(list(probers))


@pytest.fixture(autouse=True)
def _uninstrumented_templates(monkeypatch):
    """The test client keeps a copy of the context of every template it renders (each form
    field is one); no test here reads them, and the copies cost more than the pages."""
    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)


@pytest.fixture(autouse=True)
def _quiet_refusals():
    """Django logs each 403, 404 and 405 with a traceback; thousands of them here. Server
    errors are still logged."""
    logger = logging.getLogger("django.request")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield
    logger.setLevel(level)


def _prober(world: World, role: str) -> Prober:
    client = Client(raise_request_exception=False)
    user = world.users[role]
    if user is not None:
        client.force_login(user)
    return Prober(client=client, role=role)


# 1. Every pattern, every role, GET and POST: nothing, then junk in every known field at once ----


def _all_fields(value) -> dict:
    return dict.fromkeys(KNOWN_FIELDS, value)


# Bodies that do not parse as a form at all.
BROKEN_BODIES = (
    (b"name_en=%ff%fe", "application/x-www-form-urlencoded"),
    (b"\xff\xfe\x00=\xff&%ff%fe=%00&action=%ed%a0%80", "application/x-www-form-urlencoded"),
    (
        b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\nb',
        "multipart/form-data; boundary=xyz",
    ),
    (b"garbage", "multipart/form-data"),
    (b'{"name_en": "x"}', "application/json"),
)
BROKEN_QUERIES = ("%ff%fe=%ff%fe&page=%ff&before=%00", "store=%ed%a0%80&since=%ff&&==&")


def _refused(response: HttpResponseBase) -> bool:
    """Whether the page turned the role away before reading any input."""
    if response.status_code in {403, 404, 405}:
        return True
    location = response.get("Location", "")
    return response.status_code == 302 and location.startswith(reverse("login"))


@pytest.mark.parametrize("role", ROLES)
def test_every_page_survives_junk_for_every_role(world, role):
    """Junk in every known field at once, and bodies or query strings that do not parse.

    A page that turns the role away before reading any input (to the sign-in page, 403, 404,
    405) gets two junk values; any other gets the short list, the broken bodies and the broken
    query strings. Each field's full list of junk values is sent by the per-field tests.
    """
    prober = _prober(world, role)
    patterns = list(app_url_patterns())
    assert len(patterns) >= 25
    for name, pattern in patterns:
        path = world.path(name, pattern)
        for method in ("GET", "POST"):
            refused = _refused(prober.send(method, path))
            for value in ("x" * 10000, "\x00") if refused else SHORT_JUNK:
                prober.send(method, path, data=_all_fields(value))
            if refused:
                continue
            prober.send(method, path, data=_all_fields(["1", "no_such_choice"]))
            if method == "POST":
                for body, content_type in BROKEN_BODIES:
                    prober.send("POST", path, body=body, content_type=content_type)
            else:
                for query in BROKEN_QUERIES:
                    prober.send("GET", f"{path}?{query}")
        for method in ("PUT", "OPTIONS"):
            prober.send(method, path)
    _assert_no_server_error(prober)


def test_too_many_fields_files_or_bytes_are_refused_cleanly(world):
    """Django's own limits answer 400; they must not turn into a 500 on the way."""
    staff = _prober(world, "staff")
    materials = world.path("counter-materials", "counter/<reference:reference>/materials/")
    too_many_fields = "&".join(f"f{i}=x" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    staff.send("POST", materials, body=too_many_fields.encode())
    staff.send("GET", f"{materials}?{too_many_fields}")
    staff.send(
        "POST", materials, body=b"name_en=" + b"x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    )
    files = {
        f"identity_copy{i}" if i else "identity_copy": upload()
        for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)
    }
    staff.send("POST", materials, data=materials_form(**files))
    staff.send(
        "POST",
        materials,
        data=materials_form(
            identity_copy=[upload() for _ in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)]
        ),
    )
    _assert_no_server_error(staff)


# 2. Each field of each form, each junk value once, the other fields valid -----------------------


@dataclass(frozen=True)
class Target:
    """A page that takes input and who uses it; `_valid` gives a submission that it accepts,
    which the tests spoil one field at a time."""

    name: str
    role: str
    method: str
    fields: tuple[str, ...]


def _fields(*form_classes, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    names = [name for cls in form_classes for name in cls.base_fields]
    return tuple(dict.fromkeys([*names, *extra]))


# The proof of address is on the form only under a profile that asks for it: see the file test.
MATERIALS_FIELDS = tuple(
    name
    for name in _fields(counter_forms.MaterialsForm, extra=("action",))
    if name != "proof_of_address"
)
TARGETS = (
    Target("counter-new", "staff", "POST", _fields(counter_forms.NewRegistrationForm)),
    Target("counter-find", "staff", "POST", _fields(counter_forms.FindForm)),
    Target("counter-materials", "staff", "POST", MATERIALS_FIELDS),
    Target(
        "counter-channel", "staff", "POST", _fields(counter_forms.ChannelForm, extra=("action",))
    ),
    Target(
        "counter-identity", "staff", "POST", _fields(counter_forms.IdentityForm, extra=("action",))
    ),
    Target("counter-update", "staff", "POST", _fields(counter_forms.UpdateForm)),
    Target("counter-terminate", "staff", "POST", _fields(counter_forms.TerminationForm)),
    Target("document-copy", "staff", "POST", _fields(documents_forms.DocumentViewForm)),
    Target("document-copy", "supervisor", "POST", _fields(documents_forms.DocumentViewForm)),
    Target("login", "anonymous", "POST", _fields(accounts_forms.SignInForm, extra=("next",))),
    Target("set_language", "anonymous", "POST", ("language", "next")),
    Target("set_language", "staff", "GET", ("language", "next")),
    Target(
        "review-queue",
        "supervisor",
        "GET",
        _fields(review_forms.ReviewFilterForm, extra=("page", "changes_page")),
    ),
    Target("review-reveal", "supervisor", "POST", _fields(review_forms.RevealForm)),
    Target("review-decide", "supervisor", "POST", _fields(review_forms.DecisionForm)),
    Target("review-decide-change", "supervisor", "POST", _fields(review_forms.ChangeDecisionForm)),
    Target(
        "audit-list",
        "compliance",
        "GET",
        _fields(compliance_forms.AuditFilterForm, extra=("before", "after")),
    ),
    Target(
        "audit-export",
        "compliance",
        "POST",
        _fields(compliance_forms.AuditFilterForm, extra=("format",)),
    ),
    Target("audit-verify", "compliance", "POST", _fields(compliance_forms.AuditVerifyForm)),
)


def _valid(target: Target, world: World) -> dict:
    """A submission the page accepts (fresh file objects each time: a read file is spent)."""
    name = target.name
    if name == "counter-new":
        return {"store": str(world.store.pk)}
    if name == "counter-find":
        return {
            "by": "msisdn",
            "msisdn": world.approved.msisdn,
            "document_type": "hkid",
            "document_number": "A123456(3)",
        }
    if name == "counter-materials":
        # The draft has its identity copy on file: the upload is optional.
        return materials_form(identity_copy=None)
    if name == "counter-channel":
        return channel_form()
    if name == "counter-identity":
        return identity_form()
    if name == "counter-update":
        return {
            "new_address": "Flat 1, 2 New Street, Sha Tin",
            "new_contact_number": "9876 5432",
            "new_email": "new@example.com",
            "new_document_type": "hkid",
            "new_document_number": "Z683365(A)",
        }
    if name == "counter-terminate":
        return {"termination_reason": "Customer leaves Hong Kong"}
    if name == "document-copy":
        return {"reason": "check_against_original"}
    if name == "login":
        return {"username": "counter", "password": PASSWORD, "next": "/"}
    if name == "set_language":
        return {"language": "zh-hant", "next": "/"}
    if name == "review-queue":
        return {
            "store": str(world.store.pk),
            "older_than": "4",
            "channel": "counter",
            "sim_kind": "physical",
            "page": "1",
            "changes_page": "1",
        }
    if name == "review-reveal":
        return {"field": "document_number", "reason": "compare_with_copy"}
    if name == "review-decide":
        return {
            "outcome": "returned",
            "reason_code": "document_unreadable",
            "comment": "Please take the photo again.",
            "submitted_at": world.pending.submitted_at.isoformat(),
        }
    if name == "review-decide-change":
        return {"approve": "no", "reason_code": "document_mismatch", "comment": "Not the same."}
    if name in {"audit-list", "audit-export"}:
        return {
            "since": "2020-01-01T00:00",
            "until": "2030-12-31T23:59",
            "actor": "counter",
            "action": AuditEvent.Action.VIEWED.value,
            "store": world.store.code,
            "reference": world.pending.reference,
            "before": "",
            "after": "",
            "format": "csv",
        }
    if name == "audit-verify":
        return {"anchor": ""}
    raise AssertionError(name)


def _target_path(target: Target, world: World) -> str:
    return world.path(target.name, dict(app_url_patterns())[target.name])


def _target_id(target: Target) -> str:
    return f"{target.name}-{target.role}-{target.method}"


def _send(prober: Prober, target: Target, path: str, data: dict, language: str = "") -> None:
    prober.send(target.method, path, data=data, language=language)


def _fresh(obj):
    """The row as the database holds it now (the world's objects stay as they were)."""
    return type(obj).objects.get(pk=obj.pk)


def _acceptance(target: Target, world: World, response: HttpResponseBase) -> str:
    """'' when the response is the page accepting `_valid`'s submission and what that does
    is in the database; otherwise what differs."""
    name, status = target.name, response.status_code
    location = response.get("Location", "")
    draft = world.draft

    def redirected(to: str) -> bool:
        return status == 302 and location == to

    if name == "counter-new":
        new = Registration.objects.filter(reference=location.strip("/").split("/")[-2]).first()
        done = status == 302 and new is not None and new.status == "draft"
        done = done and location.endswith("/materials/") and new.store == world.store
    elif name == "counter-find":
        # The results are listed on the page, whatever store holds the record.
        listed = status == 200 and 'id="find-results"' in response.content.decode()
        done = listed and world.approved.reference in response.content.decode()
        done = done and AuditEvent.objects.filter(action=AuditEvent.Action.SEARCHED).exists()
    elif name == "counter-materials":
        done = redirected(f"/counter/{draft.reference}/channel/")
        done = done and _fresh(draft).msisdn == "+85261234567"
    elif name == "counter-channel":
        done = redirected(f"/counter/{draft.reference}/identity/")
        done = done and _fresh(draft).channel == "counter"
    elif name == "counter-identity":
        done = redirected(f"/counter/{draft.reference}/") and _fresh(draft).status == "pending"
    elif name in {"counter-update", "counter-terminate"}:
        kind = PendingChange.Kind.UPDATE if name == "counter-update" else "termination"
        done = redirected(f"/counter/{world.approved.reference}/")
        done = done and world.approved.changes.filter(kind=kind, status="pending").exists()
    elif name == "document-copy":
        done = status == 200 and response.streaming
        done = (
            done
            and AuditEvent.objects.filter(
                action=AuditEvent.Action.DOCUMENT_VIEWED, actor=world.users[target.role]
            ).exists()
        )
    elif name == "login":
        done = redirected("/") and AuditEvent.objects.filter(action="login").exists()
    elif name == "set_language":
        language = response.cookies.get(settings.LANGUAGE_COOKIE_NAME)
        done = redirected("/") and (
            target.method == "GET" or (language is not None and language.value == "zh-hant")
        )
    elif name in {"review-queue", "audit-list"}:
        done = status == 200 and "is-invalid" not in response.content.decode()
    elif name == "review-reveal":
        done = status == 200 and "A123456(3)" in response.content.decode()
        done = done and AuditEvent.objects.filter(action=AuditEvent.Action.REVEALED).exists()
    elif name == "review-decide":
        done = redirected("/review/") and _fresh(world.pending).status == "returned"
    elif name == "review-decide-change":
        done = redirected("/review/") and _fresh(world.change).status == "rejected"
    elif name in {"audit-export", "audit-verify"}:
        kind = AuditJob.Kind.EXPORT if name == "audit-export" else AuditJob.Kind.VERIFY
        job = AuditJob.objects.filter(kind=kind).order_by("-pk").first()
        done = job is not None and redirected(f"/compliance/audit/jobs/{job.pk}/")
    else:
        raise AssertionError(name)
    return "" if done else f"{status} {location}: not accepted, or its effect is missing"


# Where a message stands for input that no field of its own shows: the sign-in form's one
# message (which of the two was wrong is not said), the reveal buttons', the adult's rules,
# a record that changed while the page was open, an export format that is not offered.
MESSAGE_ABOVE_THE_FORM = {
    "login": {"username", "password"},
    "review-reveal": {"field", "reason"},
    "review-decide": {"submitted_at"},
    "counter-identity": {"representative_document_number"},
    "audit-export": {"format"},
}
# Parameters that steer a page rather than fill a form (the step buttons, where to go next,
# which page of a list): a value that means nothing is ignored, never an error.
NOT_INPUT = {"next", "page", "changes_page", "before", "after", "language"}


def _judged(target: Target, name: str) -> bool:
    if target.name == "set_language" or name in NOT_INPUT:
        return False
    if name == "action" and target.name.startswith("counter-"):
        return False  # the step buttons
    # A store that is not the user's, sent in the hidden field of a one-store counter:
    # test_a_store_that_is_not_the_users_is_refused_with_a_message.
    return (target.name, name) != ("counter-new", "store")


def _typed(name: str) -> bool:
    """A field the user types into: a refused page shows what was typed back."""
    widget = FORM_FIELDS[name].widget if name in FORM_FIELDS else None
    return isinstance(widget, forms.Textarea) or getattr(widget, "input_type", "") in {
        "text",
        "email",
        "tel",
    }


def _refusal(target: Target, world: World, prober: Prober, name: str, data: dict, response) -> str:
    """'' when the spoiled submission is accepted as the valid one would be, or refused
    with a message next to `name` (or above the form, where that is the place) and every
    other typed value still on the page; otherwise what is wrong."""
    if not _acceptance(target, world, response):
        return ""
    if target.name == "audit-export" and response.status_code == 302:
        # Refused: back to the audit page with the filters, which marks the wrong one.
        if not response["Location"].startswith(reverse("audit-list")):
            return f"{response.status_code} {response['Location']}"
        response = prober.client.get(response["Location"])
    return _shown_again(target.name, name, data, response)


def _shown_again(page_name: str, name: str, data: dict, response) -> str:
    """'' when the page is shown again with a message next to `name` (or above the form,
    where that is the place) and every other typed value still there; else what is wrong."""
    if response.status_code not in {200, 400} or response.streaming:
        return f"{response.status_code}: neither accepted nor shown again"
    page = response.content.decode()
    beside = re.search(rf'id="error_\d+_id_{name}"', page)
    above = name in MESSAGE_ABOVE_THE_FORM.get(page_name, ()) and "alert-danger" in page
    if not (beside or above):
        return "refused without a message beside the field"
    lost = [
        other
        for other, value in data.items()
        if other != name
        and isinstance(value, str)
        and _typed(other)
        and value
        and html.escape(value) not in page
    ]
    return f"lost what was typed in {lost}" if lost else ""


def _languages() -> itertools.cycle:
    """English, Traditional Chinese, English…: messages in both languages, at no extra cost."""
    return itertools.cycle([code for code, _name in settings.LANGUAGES])


@pytest.mark.parametrize("target", TARGETS, ids=_target_id)
def test_the_valid_submission_of_each_page_is_accepted(world, target):
    """What the junk tests spoil one field at a time: accepted as it stands, and it does what
    the page is for (a draft made, a decision recorded, a job started...)."""
    prober = _prober(world, target.role)
    problems = []
    prober.send(
        target.method,
        _target_path(target, world),
        data=_valid(target, world),
        inside=lambda response: problems.append(_acceptance(target, world, response)),
    )
    assert problems == [""]
    _assert_no_server_error(prober)


@pytest.mark.parametrize("target", TARGETS, ids=_target_id)
def test_each_field_survives_each_junk_value(world, target):
    """Each junk value in each field, the rest valid: accepted like the valid submission, or
    refused with a message beside the field and what was typed still there; never a 500."""
    prober = _prober(world, target.role)
    path = _target_path(target, world)
    languages = _languages()
    wrong = []
    for name in target.fields:
        if name in FILE_FIELDS:
            continue  # a file field reads only uploaded files: see the file test
        values = list(JUNK)
        if name == "store":  # a store that exists, but not one of this user's
            values += [str(world.other_store.pk), world.other_store.code]
        for value in values:
            data = {**_valid(target, world), name: value}

            def judge(response, name=name, data=data, value=value):
                if _judged(target, name) and (
                    problem := _refusal(target, world, prober, name, data, response)
                ):
                    wrong.append(f"{name}={_short(value, 30)}: {problem}")

            prober.send(target.method, path, data=data, language=next(languages), inside=judge)
        without = _valid(target, world)
        without.pop(name, None)
        _send(prober, target, path, without)
    valid = _valid(target, world)
    # Several values for each single field, the valid one first or last.
    for junk_first in (False, True):
        several = {
            name: ["no_such_choice", value] if junk_first else [value, "no_such_choice"]
            for name, value in valid.items()
            if not isinstance(value, SimpleUploadedFile)
        }
        _send(prober, target, path, {**_valid(target, world), **several})
    # Files where text is expected.
    as_files = {
        name: upload(name=f"{name}.txt")
        for name, value in valid.items()
        if not isinstance(value, SimpleUploadedFile)
    }
    _send(prober, target, path, {**valid, **as_files})
    _assert_no_server_error(prober)
    assert wrong == [], "\n".join(wrong[:20])


def test_a_store_that_is_not_the_users_is_refused_with_a_message(world):
    """Counter staff of one store send the store in a hidden field: a changed value is
    refused, and the page says why."""
    staff = _prober(world, "staff")
    response = staff.send("POST", reverse("counter-new"), data={"store": world.other_store.pk})
    assert response.status_code == 200
    assert not Registration.objects.filter(store=world.other_store).exists()
    page = response.content.decode()
    assert "alert-danger" in page and "This store is not one you work at." in page


@pytest.mark.parametrize("target", [t for t in TARGETS if t.method == "POST"], ids=_target_id)
def test_each_field_survives_bytes_that_are_not_utf8(world, target):
    prober = _prober(world, target.role)
    path = _target_path(target, world)
    text_fields = {
        k: v for k, v in _valid(target, world).items() if not isinstance(v, SimpleUploadedFile)
    }
    for name in target.fields:
        rest = urlencode({k: v for k, v in text_fields.items() if k != name}, doseq=True)
        prober.send("POST", path, body=f"{rest}&{name}=%ff%fe".lstrip("&").encode())
    # Every field at once: a lone surrogate, a NUL, raw bytes that are not percent-encoded.
    for raw in ("%ed%a0%80", "%00"):
        prober.send("POST", path, body="&".join(f"{n}={raw}" for n in target.fields).encode())
    body = "&".join(f"{name}=\xff\xfe" for name in target.fields).encode("latin-1")
    prober.send("POST", path, body=body)
    _assert_no_server_error(prober)


@pytest.mark.parametrize("target", [t for t in TARGETS if t.method == "GET"], ids=_target_id)
def test_each_query_parameter_survives_bytes_that_are_not_utf8(world, target):
    prober = _prober(world, target.role)
    path = _target_path(target, world)
    valid = _valid(target, world)
    for name in target.fields:
        rest = urlencode({k: v for k, v in valid.items() if k != name})
        for raw in ("%ff%fe", "%zz"):
            prober.send("GET", f"{path}?{rest}&{name}={raw}")
    for raw in ("%ed%a0%80", "%00"):
        prober.send("GET", f"{path}?" + "&".join(f"{n}={raw}" for n in target.fields))
    _assert_no_server_error(prober)


# 3. Files with the wrong content ----------------------------------------------------------------


def _bad_files() -> list[SimpleUploadedFile]:
    return [
        upload(b"just some text, not an image", name="hkid.png"),
        upload(b"", name="empty.png"),
        upload(PNG[:8], name="header-only.png"),
        upload(PNG[:8], name="header-only.pdf", content_type="application/pdf"),
        upload(b"%PDF-", name="truncated.pdf", content_type="application/pdf"),
        upload(b"\xff\xd8\xff", name="truncated.jpg", content_type="image/jpeg"),
        upload(b"<svg onload=alert(1)>", name="image.svg", content_type="image/svg+xml"),
        upload(PNG, name="../../etc/passwd", content_type="text/plain"),
        upload(PNG, name="𠮷" * 50 + ".png"),
        upload(PNG, name="x" * 1000 + ".png"),
        upload(PNG, name="%00.png", content_type="\x00"),
        upload(PNG, name="no-extension", content_type=""),
        upload(b"\x00" * 4096, name="zeros.png"),
        upload(b"x" * (settings.DOCUMENT_MAX_BYTES + 1), name="too-large.png"),
    ]


FILE_TARGETS = [
    (target, name) for target in TARGETS for name in target.fields if name in FILE_FIELDS
]
FILE_TARGETS.append((next(t for t in TARGETS if t.name == "counter-materials"), "proof_of_address"))


@pytest.fixture
def proof_of_address_policy(settings, monkeypatch):
    """The Hong Kong profile, asking for a proof of address."""
    profile = dataclasses.replace(
        policy.PROFILES["hk"], code="hk_address", proof_of_address_required=True
    )
    monkeypatch.setitem(policy.PROFILES, profile.code, profile)
    settings.SIMREG_POLICY = profile.code
    return profile


@pytest.mark.parametrize(
    ("target", "file_field"), FILE_TARGETS, ids=[f"{_target_id(t)}-{f}" for t, f in FILE_TARGETS]
)
def test_file_fields_survive_files_with_the_wrong_content(world, target, file_field, request):
    if file_field == "proof_of_address":
        request.getfixturevalue("proof_of_address_policy")
    prober = _prober(world, target.role)
    path = _target_path(target, world)
    for bad in _bad_files():
        _send(prober, target, path, {**_valid(target, world), file_field: bad})
    _send(prober, target, path, {**_valid(target, world), file_field: [upload(), upload(b"text")]})
    # Also with the rest of the step only saved, not completed.
    for action in ("save", "back", "next", "submit"):
        data = {**_valid(target, world), file_field: upload(b"", name="empty.png")}
        _send(prober, target, path, {**data, "action": action})
    _assert_no_server_error(prober)


def test_other_branches_of_the_steps_survive_junk(world):
    """The same forms on other paths: a returned record (editable, with the supervisor's
    comment) with an eSIM, an online channel and an under-age customer; a company's identity.
    Each valid step is accepted; each spoiled one is accepted alike or shown again with a
    message beside the field and what was typed kept."""
    staff = _prober(world, "staff")
    returned = make_returned(
        store=world.store,
        created_by=world.users["staff"],
        reviewer=world.users["supervisor"],
        comment="Please take the photo again.",
    )
    make_document_copy(returned)
    adult = {
        "representative_name_en": "CHAN Tai Man",
        "representative_document_type": "hkid",
        "representative_document_number": "A123456(3)",
        "representative_date_of_birth": "1980-01-01",
    }
    branches = (
        (returned, "materials", lambda: materials_form(sim_kind="esim", iccid="", eid=VALID_EID)),
        (returned, "channel", lambda: channel_form(channel="online", online_reference="WEB-1")),
        (
            returned,
            "identity",
            # A child with a document of their own: the factories' HKID is an adult's elsewhere.
            lambda: identity_form(
                document_number="K123456(0)",
                date_of_birth="2015-01-01",
                representative_copy=upload(name="rep.png"),
                **adult,
            ),
        ),
        (
            world.company_draft,
            "identity",
            lambda: identity_form(
                name_en="Chan Trading Limited",
                document_number="12345678",
                date_of_birth=None,
                nationality=None,
                representative_copy=upload(name="rep.png"),
                **adult,
            ),
        ),
    )
    next_step = {"materials": "channel/", "channel": "identity/", "identity": ""}
    wrong = []
    for registration, step, valid in branches:
        path = f"/counter/{registration.reference}/{step}/"
        staff.send("GET", path)
        accepted = f"/counter/{registration.reference}/{next_step[step]}"

        def check_accepted(response, step=step, accepted=accepted):
            if response.status_code != 302 or response["Location"] != accepted:
                wrong.append(f"{step}: the valid submission got {response.status_code}")

        staff.send("POST", path, data=valid(), inside=check_accepted)
        for key in valid():
            if key in FILE_FIELDS or key == "action":
                continue
            for junk in ("\x00", "0001-01-01"):
                data = {**valid(), key: junk}

                def judge(response, key=key, data=data, junk=junk, step=step, accepted=accepted):
                    if response.status_code == 302 and response["Location"] == accepted:
                        return
                    if problem := _shown_again(f"counter-{step}", key, data, response):
                        wrong.append(f"{step} {key}={junk!r}: {problem}")

                staff.send("POST", path, data=data, inside=judge)
        for key in FILE_FIELDS & set(valid()):
            staff.send("POST", path, data={**valid(), key: upload(PNG[:8], name="header.png")})
    _assert_no_server_error(staff)
    assert wrong == [], "\n".join(wrong)


# 4. Junk in the request headers that the audit log records --------------------------------------


HEADER_JUNK = ("\x00", "x" * 10000, "𠮷" * 50, "1.2.3.4, 999.999.999.999, ,")
HEADERS = (
    "HTTP_USER_AGENT",
    "HTTP_X_FORWARDED_FOR",
    "HTTP_ACCEPT_LANGUAGE",
    "HTTP_REFERER",
    "REMOTE_ADDR",
)


def test_request_headers_with_junk_get_no_server_error(world, settings):
    """The audit log records where a request came from: the address and the user agent."""
    settings.CLIENT_IP_FROM_FORWARDED_FOR = True
    staff, supervisor, compliance, anonymous = (
        _prober(world, role) for role in ("staff", "supervisor", "compliance", "anonymous")
    )
    pages = [
        (staff, "GET", f"/counter/{world.changed.reference}/", None),
        (supervisor, "GET", f"/review/{world.pending.reference}/", None),
        (compliance, "GET", "/compliance/audit/", None),
        (anonymous, "POST", "/login/", {"username": "counter", "password": "wrong"}),
    ]
    for prober, method, path, data in pages:
        for value in HEADER_JUNK:
            for header in HEADERS:
                prober.send(method, path, data=data, **{header: value})
        prober.send(method, path, data=data, HTTP_COOKIE="django_language=\x00; sessionid=%ff")
    _assert_no_server_error(staff, supervisor, compliance, anonymous)


def test_path_like_junk_in_a_url_is_not_found_not_a_server_error(world):
    """Junk where a reference or an id goes: not found or refused, never a server error."""
    probers = [_prober(world, role) for role in ROLES]
    junk_paths = [
        "/counter/AAAAA-AAAAA/",
        f"/counter/{world.draft.reference.lower()}/materials/",
        f"/counter/{world.draft.reference}/document/99999999999999999999/",
        f"/counter/{world.draft.reference}/document/0/",
        f"/documents/{world.draft.reference}/99999999999999999999/",
        f"/documents/{world.draft.reference}/0/",
        f"/review/{world.changed.reference}/changes/99999999999999999999/decide/",
        f"/review/{world.changed.reference}/changes/{world.change.pk + 1000}/decide/",
        "/counter/%ff%fe/",
        "/counter/%00/",
        "/review/../../etc/passwd/",
        "/compliance/audit/%ff/",
        "/" + "x" * 5000,
    ]
    for prober in probers:
        for path in junk_paths:
            for method in ("GET", "POST"):
                prober.send(method, path)
    _assert_no_server_error(*probers)


def test_the_path_helper_fills_every_pattern(world):
    for name, pattern in app_url_patterns():
        assert re.fullmatch(r"/[^<>]*", world.path(name, pattern)), name
