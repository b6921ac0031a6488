"""Pages every role shares: the home page, signing out, the access rule of every page."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView

from registrations import roles, selectors, services
from registrations.audit import Origin
from registrations.labels import choice_labels
from registrations.models import PendingChange, ReasonCode, Registration


class RoleRequiredMixin(AccessMixin):
    """Deny by default: a page names the permission its role needs."""

    required_permission: str = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.has_role(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def has_role(self, user) -> bool:
        return bool(self.required_permission) and roles.allows(user, self.required_permission)


class HomeView(RoleRequiredMixin, TemplateView):
    """One home page per role; a user with several roles sees each part."""

    template_name = "registrations/home.html"

    def has_role(self, user) -> bool:
        return user.is_superuser or any(
            roles.allows(user, perm) for perm in (roles.RECORD, roles.REVIEW, roles.BROWSE_AUDIT)
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        if roles.allows(user, roles.RECORD):
            counter = selectors.counter_home_for(user=user)
            counter["draft_rows"] = registration_rows(counter["drafts"])
            counter["returned_rows"] = registration_rows(counter["returned"])
            counter["decided"] = selectors.decisions_since_last_look(user=user)
            counter["decided_changes"] = selectors.change_decisions_since_last_look(user=user)
            counter["decided_items"] = decision_items(
                counter["decided"], counter["decided_changes"]
            )
            context["counter"] = counter
            # The lists name records of the user's stores: showing them is a read like any other.
            shown = [r.reference for r in (*counter["drafts"], *counter["returned"])]
            shown += [r.reference for r in counter["decided"]]
            shown += [c.registration.reference for c in counter["decided_changes"]]
            services.registration_view_list(
                actor=user,
                origin=Origin.of(self.request),
                view="counter_home",
                references=dict.fromkeys(shown),
            )
        if roles.allows(user, roles.REVIEW):
            context["review"] = selectors.review_home_for(user=user)
        if roles.allows(user, roles.BROWSE_AUDIT):
            context["audit"] = selectors.audit_home()
        return context


def registration_rows(registrations: list[Registration]) -> list[SafeString]:
    """The rows of a table of the counter's records, each linked to where it is resumed.

    Written here rather than by the template: the tags of twenty rows were most of the
    home page's time.
    """
    statuses = choice_labels(Registration.Status)
    reasons = choice_labels(ReasonCode)
    rows = []
    for registration in registrations:
        status = statuses.get(registration.status, registration.status)
        if registration.status == Registration.Status.DRAFT:
            step = _("step %(step)s") % {"step": registration.furthest_step}
            status = format_html(
                '{} <span class="text-body-secondary small">· {}</span>', status, step
            )
        if registration.reason_code:
            status = format_html(
                '{}<br><span class="small text-danger">{}</span>',
                status,
                reasons.get(registration.reason_code, registration.reason_code),
            )
        rows.append(
            format_html(
                '<tr><td class="font-monospace"><a href="{}">{}</a></td><td>{}</td><td>{}</td>'
                "<td>{}</td></tr>",
                reverse("counter-resume", args=[registration.reference]),
                registration.reference,
                status,
                registration.store.code,
                _short_datetime(registration.updated_at),
            )
        )
    return rows


def decision_items(
    registrations: list[Registration], changes: list[PendingChange]
) -> list[SafeString]:
    """The list of decisions on the counter's submissions and changes, written here as the
    tables above are."""
    statuses = choice_labels(Registration.Status)
    change_kinds = choice_labels(PendingChange.Kind)
    change_statuses = choice_labels(PendingChange.Status)
    reasons = choice_labels(ReasonCode)

    def reason(code: str) -> str:
        return f" · {reasons.get(code, code)}" if code else ""

    items = [
        format_html(
            '<li><a class="font-monospace" href="{}">{}</a> · <strong>{}</strong>{} · '
            '<span class="text-body-secondary small">{}</span></li>',
            reverse("counter-record", args=[registration.reference]),
            registration.reference,
            statuses.get(registration.status, registration.status),
            reason(registration.reason_code),
            _short_datetime(registration.decided_at),
        )
        for registration in registrations
    ]
    items.extend(
        format_html(
            '<li><a class="font-monospace" href="{}">{}</a> · {}: <strong>{}</strong>{} · '
            '<span class="text-body-secondary small">{}</span></li>',
            reverse("counter-record", args=[change.registration.reference]),
            change.registration.reference,
            change_kinds.get(change.kind, change.kind),
            change_statuses.get(change.status, change.status),
            reason(change.reason_code),
            _short_datetime(change.decided_at),
        )
        for change in changes
    )
    return items


def _short_datetime(moment: datetime.datetime | None) -> str:
    """As the template filter `date:"SHORT_DATETIME_FORMAT"` shows it."""
    if moment is None:
        return ""
    return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT")


class SignOutView(auth_views.LogoutView):
    """Django's sign-out, saying so on the sign-in page it leads to."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You are signed out."))
        return response


@require_POST
def decisions_seen(request: HttpRequest) -> HttpResponse:
    """The counter has looked at the decisions on its submissions."""
    if not roles.allows(request.user, roles.RECORD):
        raise PermissionDenied
    services.decisions_mark_seen(user=request.user)
    return redirect("home")


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico, even when showing a document copy."""
    return redirect(static("registrations/favicon.svg"), permanent=True)
