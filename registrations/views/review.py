"""Supervisor pages: the review queue, the record with reveal and decisions, the dashboard."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from registrations import roles, selectors, services
from registrations.audit import Origin
from registrations.forms.common import NATIONALITIES
from registrations.forms.review import (
    ChangeDecisionForm,
    DecisionForm,
    RevealForm,
    ReviewFilterForm,
)
from registrations.labels import choice_labels, field_label, reason_label
from registrations.masking import mask_value
from registrations.models import (
    PendingChange,
    Registration,
    RevealReason,
    User,
)
from registrations.policy import current_policy
from registrations.templatetags.simreg import escape_text
from registrations.views.common import RoleRequiredMixin

QUEUE_PAGE_SIZE = 25


def _require_reviewer(request: HttpRequest) -> None:
    if not roles.allows(request.user, roles.REVIEW):
        raise PermissionDenied


class CappedPaginator(Paginator):
    """Pages of the pending changes, counted up to selectors.QUEUE_COUNT_LIMIT rows only, like
    the submissions: the badge says "more than" past it and the pages stop there. A backlog
    that long is worked from its oldest end, and no page view counts all of it."""

    @cached_property
    def counted(self) -> tuple[int, bool]:
        return selectors.count_up_to_limit(self.object_list)

    @property
    def count(self) -> int:
        return self.counted[0]

    @property
    def count_exact(self) -> bool:
        return self.counted[1]


class ReviewQueueView(RoleRequiredMixin, TemplateView):
    """Pending submissions and pending changes; showing the page is one audit event."""

    required_permission = roles.REVIEW
    template_name = "registrations/review/queue.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        form = ReviewFilterForm(self.request.GET or None, stores=user.supervised_stores.all())
        filters = form.cleaned_data if form.is_valid() else {}
        queue = selectors.review_queue_for(
            user=user,
            store=filters.get("store"),
            older_than_hours=int(filters["older_than"]) if filters.get("older_than") else None,
            channel=filters.get("channel", ""),
            sim_kind=filters.get("sim_kind", ""),
        )
        page = selectors.review_queue_page(
            queue=queue,
            after=self.request.GET.get("after"),
            before=self.request.GET.get("before"),
            size=QUEUE_PAGE_SIZE,
        )
        narrowed = any(filters.get(name) for name in ("older_than", "channel", "sim_kind"))
        count, count_exact = selectors.review_queue_count(
            user=user, store=filters.get("store"), queue=queue if narrowed else None
        )
        changes = CappedPaginator(
            selectors.change_queue_for(
                user=user,
                store=filters.get("store"),
                older_than_hours=int(filters["older_than"]) if filters.get("older_than") else None,
            ),
            QUEUE_PAGE_SIZE,
        ).get_page(self.request.GET.get("changes_page"))
        overdue_before = timezone.now() - current_policy().review_target
        query = self.request.GET.copy()
        for name in ("page", "after", "before", "changes_page"):
            query.pop(name, None)
        services.registration_view_list(
            actor=user,
            origin=Origin.of(self.request),
            view="review_queue",
            references=[r.reference for r in page["rows"]]
            + [c.registration.reference for c in changes],
            details={"filters": {k: str(v) for k, v in filters.items() if v}},
        )
        context.update(
            filtered=any(filters.values()),
            form=form,
            page=page,
            rows=_queue_rows(page["rows"], overdue_before=overdue_before),
            queue_count=count,
            queue_count_exact=count_exact,
            changes=changes,
            change_rows=_change_rows(changes),
            query=query.urlencode(),
            review_target=current_policy().review_target,
        )
        context["failed_notifications"], context["failed_notifications_exact"] = (
            selectors.notification_failed_count_for(user=user)
        )
        return context


# The queue's rows are written here rather than by the template: the tags of 25 rows and more
# were most of the page's time.


def _since(moment: datetime.datetime | None) -> str:
    """As the template filter `timesince` shows it."""
    return timesince(moment) if moment else ""


def _username(user: User | None) -> str:
    return user.username if user is not None else ""


def _queue_rows(
    registrations: list[Registration], *, overdue_before: datetime.datetime
) -> list[SafeString]:
    channels = choice_labels(Registration.Channel)
    sim_kinds = choice_labels(Registration.SimKind)
    plans = choice_labels(Registration.Plan)
    overdue = f' <span class="badge text-bg-warning">{escape_text(_("overdue"))}</span>'
    flagged = (
        f' <span class="badge text-bg-danger discrepancy-badge">'
        f"{escape_text(_('details differ'))}</span>"
    )
    rows = []
    for registration in registrations:
        late = registration.submitted_at < overdue_before
        store = registration.store
        cells = (
            escape_text(_since(registration.submitted_at)) + (overdue if late else ""),
            f"{escape_text(store.code)} {escape_text(store.display_name)}",
            escape_text(channels.get(registration.channel, registration.channel)),
            escape_text(sim_kinds.get(registration.sim_kind, registration.sim_kind)),
            escape_text(plans.get(registration.plan, registration.plan)),
            escape_text(_username(registration.submitted_by)),
        )
        # Every value is escaped by escape_text(): format_html() costs more than the row.
        rows.append(
            mark_safe(  # noqa: S308
                f'<tr class="{"overdue" if late else ""}"><td><a class="font-monospace" '
                f'href="{escape_text(reverse("review-detail", args=[registration.reference]))}">'
                f"{escape_text(registration.reference)}</a>"
                f"{flagged if registration.discrepancy_fields else ''}</td><td>{cells[0]}</td>"
                f'<td>{cells[1]}</td><td class="d-none d-lg-table-cell">{cells[2]}</td>'
                f'<td class="d-none d-md-table-cell">{cells[3]}</td>'
                f'<td class="d-none d-md-table-cell">{cells[4]}</td><td>{cells[5]}</td></tr>'
            )
        )
    return rows


def _change_rows(changes: Iterable[PendingChange]) -> list[SafeString]:
    kinds = choice_labels(PendingChange.Kind)
    return [
        format_html(
            '<tr><td><a class="font-monospace" href="{}#changes">{}</a></td><td>{}</td>'
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            reverse("review-detail", args=[change.registration.reference]),
            change.registration.reference,
            kinds.get(change.kind, change.kind),
            ", ".join(
                # A replacement names the registration's SIM fields; the others the customer's.
                field_label(name, change=change.kind != PendingChange.Kind.REPLACEMENT)
                for name in change.changed_fields
            ),
            _since(change.requested_at),
            change.registration.store.code,
            _username(change.requested_by),
        )
        for change in changes
    ]


def _masked_identity(registration: Registration) -> list[tuple[str, str, str]]:
    """(field, label, masked value) rows; names are shown, the rest masked until revealed."""
    person = registration.customer
    if person is None or registration.purged_at:
        return []
    return [
        (field, field_label(field), mask_value(field, getattr(person, field), person.document_type))
        for field in services.REVEALABLE_FIELDS
    ]


def _comparison(change: PendingChange, registration: Registration) -> list[dict]:
    person = registration.customer
    rows = []
    for field in change.changed_fields:
        if field not in services.REVEALABLE_FIELDS or person is None:
            continue
        new_type = change.new_document_type or person.document_type
        rows.append(
            {
                "label": field_label(field, change=True),
                "field": field,
                "old": mask_value(field, getattr(person, field), person.document_type),
                "new": mask_value(field, getattr(change, f"new_{field}", ""), new_type),
            }
        )
    return rows


def _record_context(request: HttpRequest, registration: Registration, **extra) -> dict:
    user = request.user
    # The service refuses these decisions; the page says so instead of offering the buttons.
    four_eyes = selectors.registration_decision_barred(user=user, registration=registration)
    changes = list(
        registration.changes.select_related(
            "requested_by", "decided_by", "requested_at_store"
        ).order_by("-requested_at")
    )
    revealed_change = extra.pop("revealed_change", {})
    for change in changes:
        change.four_eyes_blocked = selectors.pending_change_decision_barred(
            user=user, change=change, registration_barred=four_eyes
        )
        change.comparison = _comparison(change, registration)
        for row in change.comparison:
            row["revealed"] = revealed_change.get(change.pk, {}).get(row["field"])
    person = registration.customer
    return {
        "nationality": dict(NATIONALITIES).get(person.nationality, person.nationality)
        if person is not None
        else "",
        "registration": registration,
        "person": registration.customer,
        "representative": registration.representative,
        "identity_rows": _masked_identity(registration),
        "history": registration.history.select_related("actor").order_by("at", "pk"),
        "documents": registration.documents.filter(purged_at__isnull=True).order_by("uploaded_at"),
        "changes": changes,
        "can_reveal": roles.allows(user, roles.REVEAL),
        # Translated once: every masked value has its own form with the list.
        "reveal_reasons": list(choice_labels(RevealReason).items()),
        "renewed_copy_ids": {
            c.new_document_copy_id
            for c in changes
            if c.new_document_copy_id and c.status == PendingChange.Status.PENDING
        },
        "four_eyes_blocked": four_eyes,
        "decision_form": extra.pop(
            "decision_form",
            DecisionForm(
                initial={"submitted_at": registration.submitted_at},
                flagged=bool(registration.discrepancy_fields),
            ),
        ),
        "discrepancy": _discrepancy(user, registration),
        "reveal_form": extra.pop("reveal_form", RevealForm()),
        "revealed": extra.pop("revealed", {}),
        "change_form": extra.pop("change_form", ChangeDecisionForm()),
        **extra,
    }


def _discrepancy(user: User, registration: Registration) -> dict | None:
    """The warning panel of a flagged record: the fields that differ, and the other
    registrations of the document, each a link when the user may open it."""
    if not registration.discrepancy_fields:
        return None
    references = registration.discrepancy_references
    openable = selectors.registration_references_for_review(user=user, references=references)
    return {
        "labels": [field_label(name) for name in registration.discrepancy_fields],
        "others": [
            {
                "reference": reference,
                "url": reverse("review-detail", args=[reference]) if reference in openable else "",
            }
            for reference in references
        ],
    }


def _get_record(request: HttpRequest, reference: str) -> Registration:
    return get_object_or_404(
        selectors.registration_list_for_review(user=request.user).select_related(
            "store", "customer", "representative", "created_by", "submitted_by", "reviewer"
        ),
        reference=reference,
    )


def _render_record(
    request: HttpRequest, registration: Registration, *, status: int = 200, after: str = "", **extra
) -> HttpResponse:
    """Show the record page; every showing is an audit event, even after a refused form."""
    services.registration_view_record(
        actor=request.user,
        registration=registration,
        origin=Origin.of(request),
        page="review_detail",
        after=after,
    )
    context = _record_context(request, registration, **extra)
    return render(request, "registrations/review/detail.html", context, status=status)


class ReviewDetailView(RoleRequiredMixin, View):
    required_permission = roles.REVIEW

    def get(self, request: HttpRequest, reference: str) -> HttpResponse:
        return _render_record(request, _get_record(request, reference))


def _reveal(
    request: HttpRequest,
    registration: Registration,
    *,
    reveal: Callable[..., str],
    revealed_context: Callable[[str, str], dict],
) -> HttpResponse:
    """Check the reason, reveal through the service (which audits), show the record again."""
    form = RevealForm(request.POST)
    if form.is_valid():
        field = form.cleaned_data["field"]
        try:
            value = reveal(field=field, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            context = _record_context(
                request, registration, reveal_form=form, **revealed_context(field, value)
            )
            return render(request, "registrations/review/detail.html", context)
    return _render_record(
        request, registration, status=400, after="invalid_reveal", reveal_form=form
    )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class RevealView(RoleRequiredMixin, View):
    """POST a field and a reason: the page comes back with that one value shown.

    The reveal's own audit event (with its reason) accounts for this showing of the record.
    """

    required_permission = roles.REVEAL

    def post(self, request: HttpRequest, reference: str) -> HttpResponse:
        registration = _get_record(request, reference)
        reveal = functools.partial(
            services.identity_reveal,
            registration=registration,
            user=request.user,
            origin=Origin.of(request),
        )
        return _reveal(
            request, registration, reveal=reveal, revealed_context=lambda f, v: {"revealed": {f: v}}
        )


@method_decorator(sensitive_post_parameters(), name="dispatch")
class RevealChangeView(RoleRequiredMixin, View):
    """POST a field of a pending change and a reason: the asked-for value is shown once."""

    required_permission = roles.REVEAL

    def post(self, request: HttpRequest, reference: str, change_id: int) -> HttpResponse:
        registration = _get_record(request, reference)
        change = get_object_or_404(PendingChange, pk=change_id, registration=registration)
        reveal = functools.partial(
            services.pending_change_reveal,
            change=change,
            user=request.user,
            origin=Origin.of(request),
        )
        return _reveal(
            request,
            registration,
            reveal=reveal,
            revealed_context=lambda f, v: {"revealed_change": {change.pk: {f: v}}},
        )


def _decision_form_again(form: DecisionForm, registration: Registration) -> DecisionForm:
    """The refused form, re-bound to the submission on record (never a tampered one)."""
    data = form.data.copy()
    data["submitted_at"] = (
        registration.submitted_at.isoformat() if registration.submitted_at else ""
    )
    again = DecisionForm(data, flagged=form.flagged)
    again.is_valid()
    if "submitted_at" in form.errors:
        again.add_error(None, _("This page was out of date. Check the record and decide again."))
    for error in form.non_field_errors():
        if error not in again.non_field_errors():
            again.add_error(None, error)
    return again


@require_POST
@sensitive_post_parameters()
def decide(request: HttpRequest, reference: str) -> HttpResponse:
    _require_reviewer(request)
    registration = _get_record(request, reference)
    form = DecisionForm(request.POST, flagged=bool(registration.discrepancy_fields))
    if form.is_valid():
        try:
            services.registration_decide(
                registration=registration,
                reviewer=request.user,
                outcome=form.cleaned_data["outcome"],
                reason_code=form.cleaned_data["reason_code"],
                comment=form.cleaned_data["comment"],
                submitted_at=form.cleaned_data["submitted_at"],
                origin=Origin.of(request),
                discrepancy_checked=form.cleaned_data.get("discrepancy_checked", False),
            )
        except services.DecisionConflict as conflict:
            messages.error(request, str(conflict))
            return redirect("review-detail", reference=reference)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("%(reference)s: %(decision)s.")
                % {
                    "reference": registration.reference,
                    "decision": Registration.Status(form.cleaned_data["outcome"]).label,
                },
            )
            return redirect("review-queue")
    return _render_record(
        request,
        registration,
        status=400,
        after="invalid_decision",
        decision_form=_decision_form_again(form, registration),
    )


@require_POST
@sensitive_post_parameters()
def decide_change(request: HttpRequest, reference: str, change_id: int) -> HttpResponse:
    _require_reviewer(request)
    registration = _get_record(request, reference)
    change = get_object_or_404(PendingChange, pk=change_id, registration=registration)
    form = ChangeDecisionForm(request.POST)
    if form.is_valid():
        try:
            services.pending_change_decide(
                change=change,
                reviewer=request.user,
                approve=form.cleaned_data["approve"],
                reason_code=form.cleaned_data["reason_code"],
                comment=form.cleaned_data["comment"],
                origin=Origin.of(request),
            )
        except services.DecisionConflict as conflict:
            messages.error(request, str(conflict))
            return redirect("review-detail", reference=reference)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                _("%(reference)s: %(kind)s %(decision)s.")
                % {
                    "reference": registration.reference,
                    "kind": change.get_kind_display().lower(),
                    "decision": _("approved") if form.cleaned_data["approve"] else _("rejected"),
                },
            )
            return redirect("review-queue")
    return _render_record(
        request, registration, status=400, after="invalid_change_decision", change_form=form
    )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 3600:
        return _("%(minutes)d min") % {"minutes": round(seconds / 60)}
    return _("%(hours).1f h") % {"hours": seconds / 3600}


class DashboardView(RoleRequiredMixin, TemplateView):
    required_permission = roles.REVIEW
    template_name = "registrations/review/dashboard.html"

    def get_context_data(self, **kwargs):
        data = selectors.review_dashboard_for(user=self.request.user)
        peak = max([n for _, n in data["daily"]] + [1])
        bars = [
            {
                "day": day,
                "count": n,
                "height": round(100 * n / peak),
                "y": 110 - round(100 * n / peak),
                "x": i * 20,
            }
            for i, (day, n) in enumerate(data["daily"])
        ]
        reasons_peak = max([n for _, n in data["by_reason"]] + [1])
        reasons = [
            {
                "label": reason_label(code),
                "count": n,
                "width": round(300 * n / reasons_peak),
                "y": i * 28,
            }
            for i, (code, n) in enumerate(data["by_reason"])
        ]
        statuses = [
            (label, data["by_status"].get(value, 0)) for value, label in Registration.Status.choices
        ]
        return {
            **super().get_context_data(**kwargs),
            **data,
            "bars": bars,
            "peak": peak,
            "reasons": reasons,
            "reasons_height": max(len(reasons) * 28, 28),
            "statuses": statuses,
            "median_hours": _duration(data["median_seconds"]),
        }


# Customer notifications ---------------------------------------------------------------------


def _notification_row(notification) -> dict:
    """What the supervisors' list shows of one message: the recipient masked."""
    field = "email" if notification.channel == notification.Channel.EMAIL else "contact_number"
    return {
        "pk": notification.pk,
        "reference": notification.registration.reference,
        "event": notification.get_event_display(),
        "channel": notification.get_channel_display(),
        "recipient": mask_value(field, notification.recipient),
        "state": notification.state,
        "state_label": notification.get_state_display(),
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "next_attempt_at": notification.next_attempt_at
        if notification.state == notification.State.QUEUED
        else None,
        "created_at": notification.created_at,
    }


class NotificationListView(RoleRequiredMixin, TemplateView):
    """Messages to customers of the supervised stores that were not delivered: given up on, or
    still being retried. The recipients are decrypted to be masked: showing the page is one
    audit event naming the records listed."""

    required_permission = roles.REVIEW
    template_name = "registrations/review/notifications.html"

    def get_context_data(self, **kwargs):
        user = self.request.user
        page = CappedPaginator(
            selectors.notification_list_undelivered_for(user=user), QUEUE_PAGE_SIZE
        ).get_page(self.request.GET.get("page"))
        rows = [_notification_row(notification) for notification in page]
        services.notification_view_list(
            actor=user, origin=Origin.of(self.request), references=[r["reference"] for r in rows]
        )
        return {**super().get_context_data(**kwargs), "page": page, "rows": rows}


@require_POST
def notification_retry(request: HttpRequest) -> HttpResponse:
    """Try a message again now (after the gateway or mail server is mended)."""
    _require_reviewer(request)
    notification = (
        selectors.notification_list_undelivered_for(user=request.user)
        .filter(pk=request.POST.get("notification") or 0)
        .first()
        if (request.POST.get("notification") or "").isdigit()
        else None
    )
    if notification is None:
        messages.error(request, _("That message is no longer waiting to be sent."))
        return redirect("review-notifications")
    if services.notification_retry(
        notification=notification,
        actor=request.user,
        now=timezone.now(),
        origin=Origin.of(request),
    ):
        messages.success(
            request,
            _("The message for %(reference)s will be sent again shortly.")
            % {"reference": notification.registration.reference},
        )
    else:
        messages.info(request, _("That message is already being sent again."))
    return redirect("review-notifications")
