"""Compliance admins' pages: browse, export and verify the audit log.

Nothing here reads a Person or a Registration: the audit log holds no identity value, and these
pages offer no way to reveal one.
"""

from __future__ import annotations

from dataclasses import dataclass

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Column, Layout, Row
from django import forms
from django.contrib import messages
from django.core.exceptions import FieldDoesNotExist
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from registrations import roles, selectors
from registrations.audit import Origin, audit_record
from registrations.audit_export import (
    EXPORT_FORMATS,
    MAX_YEAR,
    MIN_YEAR,
    Anchor,
    AnchorCheck,
    AuditCheck,
    AuditExport,
    AuditFilters,
    audit_chain_check,
    audit_export_stream,
    event_number,
    time_in_range,
)
from registrations.forms import DOCUMENT_REASONS
from registrations.models import (
    AuditEvent,
    DocumentCopy,
    Person,
    ReasonCode,
    Registration,
    RevealReason,
    Store,
    User,
)
from registrations.views import RoleRequiredMixin

PAGE_SIZE = 50
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class AuditFilterForm(forms.Form):
    """The filters of the audit list and its exports. Times are local (settings.TIME_ZONE)."""

    since = forms.DateTimeField(
        label=gettext_lazy("From (inclusive)"),
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        help_text=gettext_lazy("Events at or after this time."),
    )
    until = forms.DateTimeField(
        label=gettext_lazy("Before"),
        required=False,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        help_text=gettext_lazy("Events up to, not including, this time."),
    )
    actor = forms.CharField(label=gettext_lazy("User"), max_length=150, required=False)
    action = forms.ChoiceField(label=gettext_lazy("Action"), required=False)
    store = forms.ChoiceField(label=gettext_lazy("Store"), required=False)
    reference = forms.CharField(
        label=gettext_lazy("Record reference"), max_length=16, required=False
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [
            ("", gettext_lazy("Any action")),
            *AuditEvent.Action.choices,
        ]
        self.fields["store"].choices = [
            ("", gettext_lazy("Any store")),
            *((code, f"{code} {name}") for code, name in Store.objects.values_list("code", "name")),
        ]
        self.helper = FormHelper()
        self.helper.form_tag = False  # the page's <form> also holds the button
        # A GET form: a token would end up in the address, the history and the export links.
        self.helper.form_method = "get"
        self.helper.disable_csrf = True
        self.helper.layout = Layout(
            Row(
                Column("since", css_class="col-md-4 col-lg-2"),
                Column("until", css_class="col-md-4 col-lg-2"),
                Column("actor", css_class="col-md-4 col-lg-2"),
                Column("action", css_class="col-md-4 col-lg-2"),
                Column("store", css_class="col-md-4 col-lg-2"),
                Column("reference", css_class="col-md-4 col-lg-2"),
            ),
        )

    def clean_actor(self) -> str:
        return self.cleaned_data["actor"].strip()

    def clean_reference(self) -> str:
        return self.cleaned_data["reference"].strip().upper()

    def clean(self):
        cleaned = super().clean()
        for name in ("since", "until"):
            moment = cleaned.get(name)
            if moment is not None and not time_in_range(moment):
                # Also keeps the conversion to UTC from overflowing near the year 1 or 9999.
                self.add_error(
                    name,
                    _("Enter a time between the years %(first)s and %(last)s.")
                    % {"first": MIN_YEAR, "last": MAX_YEAR},
                )
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until <= since:
            self.add_error("until", _("This must be later than the start of the range."))
        return cleaned

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        return AuditFilters(
            since=data["since"],
            until=data["until"],
            actor=data["actor"],
            action=data["action"],
            store=data["store"],
            reference=data["reference"],
        )


def _filter_query(params: QueryDict) -> str:
    """The filter part of a query string, for links that keep the filters: the filters' own
    parameters, those that are set, and nothing else (no cursor, no stray token)."""
    query = QueryDict(mutable=True)
    for name in AuditFilterForm.base_fields:
        values = [value for value in params.getlist(name) if value]
        if values:
            query.setlist(name, values)
    return query.urlencode()


def _cursor(params: QueryDict, name: str) -> int | None:
    """An event number to page from; anything else (not ASCII digits, out of range) is ignored."""
    return event_number(params.get(name, ""))


class AuditVerifyForm(forms.Form):
    """Verifying the chain, optionally against an anchor recorded after an earlier check."""

    anchor = forms.CharField(
        label=gettext_lazy("Recorded anchor (optional)"),
        max_length=200,
        required=False,
        help_text=gettext_lazy(
            "The event number and hash (number:hash) recorded outside simreg after an earlier "
            "check, for example in the compliance ticket."
        ),
        widget=forms.TextInput(
            attrs={
                "placeholder": gettext_lazy("number:hash"),
                "spellcheck": "false",
                "autocomplete": "off",
                "class": "font-monospace",
            }
        ),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.form_tag = False  # the page's <form> also holds the button
        self.helper.disable_csrf = True  # the page's <form> holds the one token

    def clean_anchor(self) -> Anchor | None:
        text = self.cleaned_data["anchor"].strip()
        if not text:
            return None
        try:
            return Anchor.parse(text)
        except ValueError:
            raise forms.ValidationError(
                _(
                    "Enter the event number, a colon and the 64-character hash, as recorded "
                    "after an earlier check (for example 1234:9f86d0…)."
                ),
                code="invalid",
            ) from None


# Where a field name recorded in an event is looked up for its label, in this order.
LABELLED_MODELS = (Person, Registration, User, Store)
# Names whose model label does not say what the app calls them.
FIELD_LABELS = {"groups": gettext_lazy("Roles")}
DOCUMENT_ACTIONS = (AuditEvent.Action.DOCUMENT_UPLOADED, AuditEvent.Action.DOCUMENT_VIEWED)
# Reasons the app records on its own rather than picked from a list.
REASON_LABELS = {
    "locked": gettext_lazy("User name locked"),
    "stale": gettext_lazy("Draft left unfinished too long"),
}


def field_label(name: str, action: str = "") -> str:
    """What a field name recorded in an event is called on screen."""
    if name in FIELD_LABELS:
        return str(FIELD_LABELS[name])
    if action in DOCUMENT_ACTIONS and name in DocumentCopy.Kind.values:
        return str(DocumentCopy.Kind(name).label)
    for model in LABELLED_MODELS:
        try:
            verbose_name = getattr(model._meta.get_field(name), "verbose_name", None)
        except FieldDoesNotExist:
            continue
        if verbose_name:
            return capfirst(str(verbose_name))
    return capfirst(name.replace("_", " ").strip())


def reason_label(reason: str, action: str = "") -> str:
    """What a reason code recorded in an event means; free text is shown as it is."""
    if not reason:
        return ""
    tables: list[dict] = [
        dict(ReasonCode.choices),
        dict(RevealReason.choices),
        dict(DOCUMENT_REASONS),
        REASON_LABELS,
    ]
    if action == AuditEvent.Action.REVEALED:
        # "suspected_fraud" is both a refusal and a reason to reveal.
        tables.insert(0, tables.pop(1))
    for table in tables:
        if reason in table:
            return str(table[reason])
    return reason


@dataclass(frozen=True)
class AuditRow:
    """An event as the list shows it: codes with their labels; exports keep the codes."""

    event: AuditEvent
    reason: str
    fields: list[tuple[str, str]]

    @classmethod
    def of(cls, event: AuditEvent) -> AuditRow:
        return cls(
            event=event,
            reason=reason_label(event.reason, event.action),
            fields=[(name, field_label(str(name), event.action)) for name in event.fields or ()],
        )


# The head shown after a check: the session holds an event number and a hash, nothing else.
VERIFIED_HEAD = "simreg_audit_verified_head"


class AuditListView(RoleRequiredMixin, View):
    """The audit log, newest first, filtered and paged by event number."""

    required_permission = roles.BROWSE_AUDIT
    template_name = "registrations/audit_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.GET)
        context = {
            "form": form,
            "filter_query": _filter_query(request.GET),
            "verify_form": AuditVerifyForm(),
            "verified_head": request.session.pop(VERIFIED_HEAD, None),
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
        # Every read is accounted for, this one too.
        audit_record(
            actor=request.user,
            action=AuditEvent.Action.LISTED,
            origin=Origin.of(request),
            details={"view": "audit", "filters": filters.as_details()},
        )
        context.update(
            page=page, rows=[AuditRow.of(event) for event in page["events"]], formats=EXPORT_FORMATS
        )
        return render(request, self.template_name, context)


class AuditExportView(RoleRequiredMixin, View):
    """The filtered log as a CSV or JSON Lines file, streamed."""

    required_permission = roles.BROWSE_AUDIT

    def get(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.GET)
        fmt = request.GET.get("format", "")
        if fmt not in EXPORT_FORMATS or not form.is_valid():
            messages.error(request, _("Choose a valid export format and filters."))
            query = _filter_query(request.GET)
            return redirect(reverse("audit-list") + (f"?{query}" if query else ""))
        export = AuditExport(filters=form.filters(), fmt=fmt)
        response = StreamingHttpResponse(
            audit_export_stream(export=export, actor=request.user, origin=Origin.of(request)),
            content_type=export.content_type,
        )
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response


class AuditVerifyView(RoleRequiredMixin, View):
    """Recompute the whole chain and say whether it is intact, or where it breaks; check an
    anchor recorded earlier, and show the head to record for the next check."""

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
            }
            return render(request, AuditListView.template_name, context, status=400)
        anchor = verify_form.cleaned_data["anchor"]
        check = audit_chain_check(
            actor=request.user,
            origin=Origin.of(request),
            anchors=[anchor] if anchor is not None else [],
        )
        self.report(request, check)
        return redirect("audit-list")

    def report(self, request: HttpRequest, check: AuditCheck) -> None:
        """The outcome, as one message per finding; never a success next to a failure."""
        report = check.chain
        if not report.ok:
            messages.error(
                request,
                _("The audit chain is broken at event #%(seq)s (%(problem)s).")
                % {"seq": report.broken_seq, "problem": report.problem},
            )
            for anchor_check in check.mismatched:
                messages.error(request, self.broken_anchor(anchor_check))
            return
        if not check.mismatched:
            messages.success(
                request,
                _("The audit chain is intact: %(count)s events checked.")
                % {"count": report.checked},
            )
        for anchor_check in check.anchors:
            if anchor_check.matches:
                # Beside an anchor that fails, a match is information, not a success.
                notice = messages.info if check.mismatched else messages.success
                notice(
                    request,
                    _(
                        "Anchor #%(seq)s matches: the log up to that event is the one that was "
                        "recorded."
                    )
                    % {"seq": anchor_check.anchor.seq},
                )
            else:
                messages.error(request, self.failed_anchor(anchor_check, checked=report.checked))
        # A head is worth recording only when everything checked out.
        if check.ok and check.head is not None:
            request.session[VERIFIED_HEAD] = {"seq": check.head.seq, "hash": check.head.hash}

    @staticmethod
    def failed_anchor(anchor_check: AnchorCheck, *, checked: int) -> str:
        """An anchor that fails although every link of the chain holds."""
        values = {"count": checked, "seq": anchor_check.anchor.seq}
        if anchor_check.found_hash is None:
            text = _(
                "The links of the audit chain are intact (%(count)s events checked), but "
                "anchor #%(seq)s does not match: event #%(seq)s no longer exists. The log was "
                "truncated or re-written after the anchor was recorded, or the anchor was "
                "copied wrongly."
            )
            return text % values
        text = _(
            "The links of the audit chain are intact (%(count)s events checked), but anchor "
            "#%(seq)s does not match: event #%(seq)s now has the hash %(hash)s. The log was "
            "truncated or re-written after the anchor was recorded, or the anchor was copied "
            "wrongly."
        )
        return text % {**values, "hash": anchor_check.found_hash}

    @staticmethod
    def broken_anchor(anchor_check: AnchorCheck) -> str:
        """An anchor that fails in a chain that is broken anyway."""
        seq = anchor_check.anchor.seq
        if anchor_check.found_hash is None:
            return _(
                "Anchor #%(seq)s does not match: the log was truncated or re-written "
                "(event #%(seq)s no longer exists)."
            ) % {"seq": seq}
        return _(
            "Anchor #%(seq)s does not match: the log was truncated or re-written "
            "(event #%(seq)s now has the hash %(hash)s)."
        ) % {"seq": seq, "hash": anchor_check.found_hash}
