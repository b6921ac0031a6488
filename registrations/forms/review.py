"""The supervisor's forms: the queue's filters, a decision, a reveal."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from registrations.models import (
    ReasonCode,
    Registration,
    RevealReason,
    Store,
)
from registrations.services import DISCREPANCY_UNCHECKED, REVEALABLE_FIELDS

# Review ------------------------------------------------------------------------------------------


class ReviewFilterForm(forms.Form):
    AGE_CHOICES = [
        ("", _("Any age")),
        ("4", _("Older than 4 hours")),
        ("24", _("Older than 1 day")),
        ("72", _("Older than 3 days")),
    ]

    store = forms.ModelChoiceField(
        label=_("Store"), queryset=Store.objects.none(), required=False, empty_label=_("All stores")
    )
    older_than = forms.ChoiceField(label=_("Age"), choices=AGE_CHOICES, required=False)
    channel = forms.ChoiceField(
        label=_("Channel"),
        choices=[("", _("Any channel")), *Registration.Channel.choices],
        required=False,
    )
    sim_kind = forms.ChoiceField(
        label=_("SIM type"),
        choices=[("", _("Any SIM type")), *Registration.SimKind.choices],
        required=False,
    )

    def __init__(self, *args, stores=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].queryset = stores if stores is not None else Store.objects.none()


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Decision"),
        widget=forms.RadioSelect,
        choices=[
            (Registration.Status.APPROVED, _("Approve")),
            (Registration.Status.RETURNED, _("Return for correction")),
            (Registration.Status.REJECTED, _("Reject")),
        ],
    )
    reason_code = forms.ChoiceField(
        label=_("Reason"),
        choices=[("", _("— choose for return or reject —")), *ReasonCode.choices],
        required=False,
    )
    comment = forms.CharField(
        label=_("Comment"),
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=1000,
        help_text=_("Shown to the counter with the reason."),
    )
    discrepancy_checked = forms.BooleanField(
        label=_("I have checked the discrepancy"),
        required=False,
        help_text=_("Needed to approve a record flagged as differing from another registration."),
    )
    submitted_at = forms.DateTimeField(widget=forms.HiddenInput)

    def __init__(self, *args, flagged: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        # Only a record whose details differ from another registration asks for the check.
        self.flagged = flagged
        if not flagged:
            del self.fields["discrepancy_checked"]

    def clean_submitted_at(self):
        value = self.cleaned_data["submitted_at"]
        # Only a time the server itself wrote can come back here.
        if not 2000 <= value.year <= 2999:
            raise ValidationError(_("This page was out of date."), code="stale")
        return value

    def clean(self):
        cleaned = super().clean()
        outcome = cleaned.get("outcome")
        if outcome and outcome != Registration.Status.APPROVED and not cleaned.get("reason_code"):
            self.add_error("reason_code", _("Choose a reason for rejecting or returning."))
        if (
            self.flagged
            and outcome == Registration.Status.APPROVED
            and not cleaned.get("discrepancy_checked")
        ):
            self.add_error("discrepancy_checked", DISCREPANCY_UNCHECKED)
        return cleaned


class ChangeDecisionForm(forms.Form):
    approve = forms.TypedChoiceField(
        label=_("Decision"),
        widget=forms.RadioSelect,
        coerce=lambda value: value == "yes",
        choices=[("yes", _("Approve")), ("no", _("Reject"))],
    )
    reason_code = forms.ChoiceField(
        label=_("Reason"),
        choices=[("", _("— choose when rejecting —")), *ReasonCode.choices],
        required=False,
    )
    comment = forms.CharField(
        label=_("Comment"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=1000,
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("approve") is False and not cleaned.get("reason_code"):
            self.add_error("reason_code", _("Choose a reason for rejecting."))
        return cleaned


class RevealForm(forms.Form):
    field = forms.ChoiceField(
        choices=[(name, name) for name in REVEALABLE_FIELDS], widget=forms.HiddenInput
    )
    reason = forms.ChoiceField(
        label=_("Why do you need the full value?"),
        choices=[("", "---------"), *RevealReason.choices],
        help_text=_("Recorded in the audit log."),
        error_messages={
            "required": _("Choose why you need to see the full value."),
            "invalid_choice": _("Choose why you need to see the full value."),
        },
    )
