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
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView

from registrations import roles, selectors, services
from registrations.audit import Origin
from registrations.labels import choice_labels
from registrations.masking import mask_mobile_number, mask_name
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
            counter["draft_rows"] = registration_rows(counter["drafts"], list_name="drafts")
            counter["returned_rows"] = registration_rows(counter["returned"], list_name="returned")
            counter["see_all"] = {
                name: counter_list_links(counter, name) for name in ("drafts", "returned")
            }
            decided = selectors.counter_decisions_since_last_look(user=user)
            counter["decided"] = decided["registrations"]
            counter["decided_changes"] = decided["changes"]
            counter["decided_more"] = decided["more"]
            counter["decided_limit"] = decided["limit"]
            counter["decided_items"] = decision_items(
                decided["items"], own_store_ids={store.pk for store in counter["stores"]}
            )
            context["counter"] = counter
            # The lists name records of the user's stores, the drafts and returned ones with
            # their customers' names decrypted (shown masked): a read like any other.
            shown = [r.reference for r in (*counter["drafts"], *counter["returned"])]
            shown += [r.reference for r in counter["decided"]]
            shown += [c.registration.reference for c in counter["decided_changes"]]
            services.registration_view_counter_list(
                actor=user,
                origin=Origin.of(self.request),
                view="counter_home",
                list_name="home",
                page=1,
                references=list(dict.fromkeys(shown)),
            )
        if roles.allows(user, roles.REVIEW):
            context["review"] = selectors.review_home_for(user=user)
        if roles.allows(user, roles.BROWSE_AUDIT):
            context["audit"] = selectors.audit_home()
        context["breaches"] = roles.allows(user, roles.RECORD_BREACH)
        return context


def registration_rows(
    registrations: list[Registration], *, list_name: str | None = None
) -> list[SafeString]:
    """The rows of a table of the counter's records: reference (linked to where a draft or a
    returned record is resumed, the record page otherwise), the customer's names and mobile
    number masked, the status with the step a draft reached or the reason it was returned, the
    store, when (started, submitted or decided, as the list is ordered) and who recorded it.

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
        customer = registration.customer
        names = [mask_name(customer.name_en), mask_name(customer.name_zh)] if customer else []
        names = [name for name in names if name]
        name_cell = format_html_join(mark_safe("<br>"), "<span>{}</span>", ((n,) for n in names))
        column = selectors.COUNTER_LISTS[list_name or selectors.counter_list_name_of(registration)][
            1
        ]
        editable = registration.status in Registration.EDITABLE_STATUSES
        rows.append(
            format_html(
                '<tr><td class="font-monospace text-nowrap"><a href="{}">{}</a></td>'
                '<td class="masked" lang="zh-Hant-HK">{}</td>'
                '<td class="masked font-monospace text-nowrap">{}</td><td>{}</td><td>{}</td>'
                '<td class="text-nowrap">{}</td><td>{}</td></tr>',
                reverse(
                    "counter-resume" if editable else "counter-record",
                    args=[registration.reference],
                ),
                registration.reference,
                name_cell or "—",
                mask_mobile_number(registration.msisdn) or "—",
                status,
                registration.store.code,
                _short_datetime(getattr(registration, column or "created_at")),
                registration.created_by.username,
            )
        )
    return rows


def counter_list_links(counter: dict, list_name: str) -> list[dict]:
    """ "See all (N)" of one list of the home page, N from the kept counts: one link, or one per
    store for someone working at several (the list shows one store at a time)."""
    base = reverse("counter-records")
    return [
        {
            "store": store,
            "count": counter["lists_by_store"][store.pk][list_name],
            "url": f"{base}?{urlencode({'list': list_name, 'store': store.code})}",
        }
        for store in counter["stores"]
    ]


def decision_items(
    items: list[Registration | PendingChange], *, own_store_ids: set[int]
) -> list[SafeString]:
    """The list of decisions on the counter's submissions and changes, newest first, written
    here as the tables above are. A change asked for at another store's record links to its
    service page: the counter does not browse that store's record pages."""
    statuses = choice_labels(Registration.Status)
    change_kinds = choice_labels(PendingChange.Kind)
    change_statuses = choice_labels(PendingChange.Status)
    reasons = choice_labels(ReasonCode)

    def reason(code: str) -> str:
        return f" · {reasons.get(code, code)}" if code else ""

    rendered = []
    for item in items:
        if isinstance(item, PendingChange):
            rendered.append(
                format_html(
                    '<li><a class="font-monospace" href="{}">{}</a> · {}: <strong>{}</strong>{} · '
                    '<span class="text-body-secondary small">{}</span></li>',
                    reverse(
                        "counter-record"
                        if item.registration.store_id in own_store_ids
                        else "counter-service",
                        args=[item.registration.reference],
                    ),
                    item.registration.reference,
                    change_kinds.get(item.kind, item.kind),
                    change_statuses.get(item.status, item.status),
                    reason(item.reason_code),
                    _short_datetime(item.decided_at),
                )
            )
            continue
        rendered.append(
            format_html(
                '<li><a class="font-monospace" href="{}">{}</a> · <strong>{}</strong>{} · '
                '<span class="text-body-secondary small">{}</span></li>',
                reverse("counter-record", args=[item.reference]),
                item.reference,
                statuses.get(item.status, item.status),
                reason(item.reason_code),
                _short_datetime(item.decided_at),
            )
        )
    return rendered


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
