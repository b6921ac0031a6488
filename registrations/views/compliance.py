"""Compliance admins' pages: browse, export and verify the audit log; record breaches.

Nothing here reads a Person or a Registration: the audit log holds no identity value, and these
pages offer no way to reveal one. A breach record's description may name people: it is stored
encrypted and each opening of it is an audit event.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    JsonResponse,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View

from registrations import roles, selectors, services
from registrations.audit import (
    EXPORT_FORMATS,
    AuditExport,
    AuditFilters,
    Origin,
    event_number,
)
from registrations.forms.compliance import AuditFilterForm, AuditVerifyForm, BreachForm
from registrations.labels import choice_labels, field_label, reason_label
from registrations.models import AuditEvent, AuditJob
from registrations.policy import current_policy
from registrations.templatetags.simreg import escape_text
from registrations.views.common import RoleRequiredMixin

PAGE_SIZE = 50


def _filter_query(params: QueryDict) -> str:
    """The filter part of a query string, for links that keep the filters: the filters' own
    parameters, those that are set, and nothing else (no cursor, no stray token)."""
    query = QueryDict(mutable=True)
    for name in AuditFilterForm.base_fields:
        values = [value for value in params.getlist(name) if value]
        if values:
            query.setlist(name, values)
    return query.urlencode()


def _filter_fields(params: QueryDict) -> list[tuple[str, str]]:
    """The filters set, as (name, value) for the hidden fields of the export form."""
    return [
        (name, value)
        for name in AuditFilterForm.base_fields
        for value in params.getlist(name)
        if value
    ]


def _cursor(params: QueryDict, name: str) -> int | None:
    """An event number to page from; anything else (not ASCII digits, out of range) is ignored."""
    return event_number(params.get(name, ""))


@dataclass(frozen=True)
class AuditRow:
    """An event as the list shows it: codes with their labels; exports keep the codes.

    The row writes its own HTML (`html`): a page of 50 rows through the template's tags and
    filters cost more than the rest of the page.
    """

    event: AuditEvent
    action: str
    reason: str
    fields: list[tuple[str, str]]

    @classmethod
    def of(cls, event: AuditEvent, *, actions: dict[str, str]) -> AuditRow:
        return cls(
            event=event,
            action=actions.get(event.action, event.action),
            reason=reason_label(event.reason, action=event.action),
            fields=[
                (name, field_label(str(name), action=event.action)) for name in event.fields or ()
            ],
        )

    @property
    def html(self) -> SafeString:
        event, text = self.event, escape_text
        if not event.reason:
            reason = ""
        elif self.reason != event.reason:
            reason = f'<span title="{text(event.reason)}">{text(self.reason)}</span>'
        else:
            reason = text(event.reason)
        fields = ", ".join(
            f'<span title="{text(name)}">{text(label)}</span>' for name, label in self.fields
        )
        at = timezone.localtime(event.at).strftime("%Y-%m-%d %H:%M:%S")
        # Every value goes through escape_text(); format_html() would cost more than the rest
        # of the row.
        return mark_safe(  # noqa: S308
            f'<tr><td>{event.id}</td><td class="text-nowrap">{at}</td>'
            f"<td>{text(event.actor_username or '—')}</td><td>{text(self.action)}</td>"
            f"<td>{text(event.store_code or '—')}</td>"
            f'<td class="text-nowrap">{text(event.registration_reference or "—")}</td>'
            f"<td>{text(event.ip or '—')}</td><td>{reason}</td><td>{fields}</td>"
            f'<td><code title="{text(event.hash)}">{text(event.hash[:12])}</code></td></tr>'
        )


class AuditListView(RoleRequiredMixin, View):
    """The audit log, newest first, filtered and paged by event number."""

    required_permission = roles.BROWSE_AUDIT
    template_name = "registrations/compliance/audit_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.GET)
        context = {
            "form": form,
            "filter_query": _filter_query(request.GET),
            "verify_form": AuditVerifyForm(),
            "jobs": selectors.audit_job_list_for(user=request.user),
        }
        if not form.is_valid():
            # Nothing is listed, so nothing is recorded; the errors stand next to the fields.
            return render(request, self.template_name, context, status=400)
        filters = form.filters()
        page = selectors.audit_event_page(
            events=filters.events(),
            before=_cursor(request.GET, "before"),
            after=_cursor(request.GET, "after"),
            size=PAGE_SIZE,
        )
        actions = choice_labels(AuditEvent.Action)
        # Every read is accounted for, this one too.
        services.audit_log_view_list(actor=request.user, origin=Origin.of(request), filters=filters)
        context.update(
            page=page,
            rows=[AuditRow.of(event, actions=actions) for event in page["events"]],
            formats=EXPORT_FORMATS,
            filter_fields=_filter_fields(request.GET),
        )
        return render(request, self.template_name, context)


class AuditExportView(RoleRequiredMixin, View):
    """Start an export of the filtered log: the job worker writes it, the job page offers it.

    Nothing is exported inside the request: an export of a billion events would outlast any
    request, and a broken connection would waste it.
    """

    required_permission = roles.BROWSE_AUDIT
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.POST)
        fmt = request.POST.get("format", "")
        if fmt not in EXPORT_FORMATS or not form.is_valid():
            messages.error(request, _("Choose a valid export format and filters."))
            query = _filter_query(request.POST)
            return redirect(reverse("audit-list") + (f"?{query}" if query else ""))
        job = services.audit_job_start_export(
            user=request.user, origin=Origin.of(request), filters=form.filters(), fmt=fmt
        )
        return redirect(job)


class AuditVerifyView(RoleRequiredMixin, View):
    """Start a verification of the whole log, optionally against an anchor recorded earlier;
    the job worker runs it, the job page shows its progress and its outcome."""

    required_permission = roles.BROWSE_AUDIT
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        verify_form = AuditVerifyForm(request.POST)
        if not verify_form.is_valid():
            # Nothing is verified, so nothing is recorded; the error stands next to the field.
            context = {
                "form": AuditFilterForm(),
                "filter_query": "",
                "verify_form": verify_form,
                "jobs": selectors.audit_job_list_for(user=request.user),
            }
            return render(request, AuditListView.template_name, context, status=400)
        anchor = verify_form.cleaned_data["anchor"]
        job = services.audit_job_start_verify(
            user=request.user,
            origin=Origin.of(request),
            anchors=[anchor] if anchor is not None else [],
        )
        return redirect(job)


# Jobs: verifications and exports run by the job worker --------------------------------------


def verification_findings(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The outcome of a verification as (alert level, message), one per finding: never a
    success next to a failure."""
    findings: list[tuple[str, str]] = []
    if result.get("ok"):
        findings.append(
            (
                "success",
                _("The audit chain is intact: %(count)s events checked.")
                % {"count": result.get("checked", 0)},
            )
        )
    else:
        problems = result.get("problems") or []
        findings.extend(
            ("danger", _("The audit log is broken: %(problem)s.") % {"problem": problem})
            for problem in problems
        )
        if not problems:
            findings.append(("danger", _("The audit log did not pass the verification.")))
    for anchor in result.get("anchors", ()):
        if anchor.get("matches"):
            # Beside a failure, a matching anchor is information, not a success.
            findings.append(
                (
                    "success" if result.get("ok") else "info",
                    _(
                        "Anchor %(anchor)s matches: the log up to that event is the one that "
                        "was recorded."
                    )
                    % {"anchor": f"{anchor.get('chain', 0)}:{anchor.get('seq')}"},
                )
            )
    return findings


def checkpoint_summary(result: dict[str, Any]) -> str:
    """What the signed checkpoints covered, and how many events only an anchor vouches for."""
    if "checkpoints" not in result:
        return ""
    checked = result["checkpoints"] or 0
    summary = ngettext(
        "%(count)s signed checkpoint checked.", "%(count)s signed checkpoints checked.", checked
    ) % {"count": checked}
    unsealed = result.get("unsealed") or 0
    if unsealed:
        summary += " " + ngettext(
            "%(count)s event is newer than the latest checkpoint: only an anchor vouches for it.",
            "%(count)s events are newer than the latest checkpoint: only an anchor vouches for "
            "them.",
            unsealed,
        ) % {"count": unsealed}
    return summary


def progress_label(job: AuditJob) -> str:
    if job.state == AuditJob.State.QUEUED:
        return _("Waiting for the worker to start it.")
    if not job.progress_total:
        return _("Starting…")
    noun = (
        _("%(done)s of %(total)s events checked")
        if job.kind == AuditJob.Kind.VERIFY
        else _("%(done)s of about %(total)s events written")
    )
    return noun % {
        "done": number_format(job.progress_done, force_grouping=True),
        "total": number_format(job.progress_total, force_grouping=True),
    }


def job_filters(job: AuditJob) -> list[tuple[str, str]]:
    """The filters of an export, labelled as on the audit page; times in local time."""
    shown = []
    for name, value in job.filters.items():
        field = AuditFilterForm.base_fields.get(name)
        if field is None or not value:
            continue
        if name in ("since", "until"):
            moment = timezone.localtime(datetime.datetime.fromisoformat(value))
            value = moment.strftime("%Y-%m-%d %H:%M")
        shown.append((str(field.label), value))
    return shown


class AuditJobView(RoleRequiredMixin, View):
    """One of the user's jobs: its progress while it runs, then its outcome or its file."""

    required_permission = roles.BROWSE_AUDIT
    template_name = "registrations/compliance/audit_job.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = selectors.audit_job_for(user=request.user, pk=pk)
        if job is None:
            raise Http404
        return render(request, self.template_name, self.context(job))

    @staticmethod
    def context(job: AuditJob, *, gone: str = "") -> dict[str, Any]:
        finished = job.state == AuditJob.State.FINISHED
        context: dict[str, Any] = {
            "job": job,
            "progress_label": progress_label(job),
            "filters": job_filters(job),
            "gone": gone,
        }
        if finished and job.kind == AuditJob.Kind.VERIFY:
            context["findings"] = verification_findings(job.result)
            context["checkpoints"] = checkpoint_summary(job.result)
            context["heads"] = job.result.get("heads") or []
        if finished and job.kind == AuditJob.Kind.EXPORT:
            context["available"] = bool(job.stored_name) and (
                job.expires_at is not None and job.expires_at > timezone.now()
            )
        return context


class AuditJobStatusView(RoleRequiredMixin, View):
    """A job's state and progress, for the job page's script."""

    required_permission = roles.BROWSE_AUDIT

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = selectors.audit_job_for(user=request.user, pk=pk)
        if job is None:
            raise Http404
        return JsonResponse(
            {
                "state": job.state,
                "state_label": job.get_state_display(),
                "finished": job.is_done,
                "done": job.progress_done,
                "total": job.progress_total,
                "progress_label": progress_label(job),
            }
        )


class AuditJobDownloadView(RoleRequiredMixin, View):
    """The file of a finished export, decrypted as it is sent, for the user who asked for it."""

    required_permission = roles.BROWSE_AUDIT

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = selectors.audit_job_for(user=request.user, pk=pk)
        if job is None or job.kind != AuditJob.Kind.EXPORT or job.state != AuditJob.State.FINISHED:
            raise Http404
        try:
            chunks = services.audit_export_download(
                job=job, actor=request.user, origin=Origin.of(request)
            )
        except services.ExportUnavailable as unavailable:
            if unavailable.expired:
                gone = _(
                    "This export has expired and its file was deleted: exports are kept for "
                    "%(hours)s hours. Start a new export from the audit log."
                ) % {"hours": settings.AUDIT_EXPORT_TTL_HOURS}
            else:
                gone = _(
                    "The file of this export can no longer be read (it is missing, damaged or "
                    "under a key that is no longer configured). Start a new export from the "
                    "audit log."
                )
            return render(
                request,
                AuditJobView.template_name,
                AuditJobView.context(job, gone=gone),
                status=410,
            )
        export = AuditExport(filters=AuditFilters(), fmt=job.format)
        response = StreamingHttpResponse(chunks, content_type=export.content_type)
        filename = job.result.get("filename") or export.filename
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


# Breach records -------------------------------------------------------------------------------

BREACH_PAGE_SIZE = 25


def _breach_context(**context: Any) -> dict[str, Any]:
    """What every breach page shows of the policy: how soon the regulator must be told."""
    policy = current_policy()
    deadline = policy.breach_notification_deadline
    return {
        "policy": policy,
        "deadline_hours": int(deadline.total_seconds() // 3600) if deadline else None,
        **context,
    }


class BreachListView(RoleRequiredMixin, View):
    """Suspected breaches, newest found first: when, what, whom was told, overdue or not.

    The list shows no description (the only field that may name someone), so it is no read
    of one and writes no audit event; opening one does.
    """

    required_permission = roles.RECORD_BREACH
    template_name = "registrations/compliance/breach_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        page = Paginator(selectors.breach_list_for(user=request.user), BREACH_PAGE_SIZE).get_page(
            request.GET.get("page")
        )
        now = timezone.now()
        rows = [(breach, services.breach_notice(breach, now=now)) for breach in page]
        return render(request, self.template_name, _breach_context(page=page, rows=rows))


class BreachCreateView(RoleRequiredMixin, View):
    """Record a suspected breach."""

    required_permission = roles.RECORD_BREACH
    template_name = "registrations/compliance/breach_form.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, self.template_name, _breach_context(form=BreachForm()))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = BreachForm(request.POST)
        if not form.is_valid():
            return render(request, self.template_name, _breach_context(form=form), status=400)
        breach = services.breach_record(
            actor=request.user, details=form.details(), origin=Origin.of(request)
        )
        messages.success(request, _("Breach %(number)s recorded.") % {"number": breach.pk})
        return redirect(breach)


class BreachDetailView(RoleRequiredMixin, View):
    """One breach record, its description included: opening it is an audit event."""

    required_permission = roles.RECORD_BREACH
    template_name = "registrations/compliance/breach_detail.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        breach = selectors.breach_for(user=request.user, pk=pk)
        if breach is None:
            raise Http404
        services.breach_view(
            actor=request.user, breach=breach, page="breach_detail", origin=Origin.of(request)
        )
        return render(
            request,
            self.template_name,
            _breach_context(breach=breach, notice=services.breach_notice(breach)),
        )


class BreachEditView(RoleRequiredMixin, View):
    """Update a breach record: the authority notified, the subscribers told, closed."""

    required_permission = roles.RECORD_BREACH
    template_name = "registrations/compliance/breach_form.html"

    def _breach(self, request: HttpRequest, pk: int):
        breach = selectors.breach_for(user=request.user, pk=pk)
        if breach is None:
            raise Http404
        return breach

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        breach = self._breach(request, pk)
        # The form shows the stored description: an opening of the record like its page.
        services.breach_view(
            actor=request.user, breach=breach, page="breach_edit", origin=Origin.of(request)
        )
        return render(
            request, self.template_name, _breach_context(form=BreachForm.of(breach), breach=breach)
        )

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        breach = self._breach(request, pk)
        form = BreachForm(request.POST)
        if not form.is_valid():
            return render(
                request,
                self.template_name,
                _breach_context(form=form, breach=breach),
                status=400,
            )
        changed = services.breach_update(
            breach=breach, actor=request.user, details=form.details(), origin=Origin.of(request)
        )
        if changed:
            messages.success(request, _("Breach %(number)s updated.") % {"number": breach.pk})
        else:
            messages.info(request, _("Nothing was changed."))
        return redirect(breach)
