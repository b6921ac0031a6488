"""The audit log's filters, the chain check's anchor, and breach records."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from registrations.audit import (
    MAX_YEAR,
    MIN_YEAR,
    Anchor,
    AuditFilters,
    time_in_range,
)
from registrations.models import (
    AuditEvent,
    BreachRecord,
    Store,
)
from registrations.services.breaches import BreachDetails

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


class AuditVerifyForm(forms.Form):
    """Verifying the chain, optionally against an anchor recorded after an earlier check."""

    anchor = forms.CharField(
        label=gettext_lazy("Recorded anchor (optional)"),
        max_length=200,
        required=False,
        help_text=gettext_lazy(
            "A chain head (chain:position:hash) shown by an earlier check and recorded outside "
            "simreg, for example in the compliance ticket."
        ),
        widget=forms.TextInput(
            attrs={
                "placeholder": gettext_lazy("chain:position:hash"),
                "spellcheck": "false",
                "autocomplete": "off",
                "class": "font-monospace",
            }
        ),
    )

    def clean_anchor(self) -> Anchor | None:
        text = self.cleaned_data["anchor"].strip()
        if not text:
            return None
        try:
            return Anchor.parse(text)
        except ValueError:
            raise forms.ValidationError(
                _(
                    "Enter the chain, its position and the 64-character hash, separated by "
                    "colons, as recorded after an earlier check (for example 12:1234:9f86d0…)."
                ),
                code="invalid",
            ) from None


def _moment_field(label, *, required: bool = False, help_text="") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        input_formats=[DATETIME_LOCAL, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
        help_text=help_text,
    )


class BreachForm(forms.Form):
    """A suspected breach as a compliance admin records or updates it. Times are local."""

    found_at = _moment_field(
        gettext_lazy("Found"),
        required=True,
        help_text=gettext_lazy("When the breach was found or first suspected."),
    )
    occurred_at = _moment_field(
        gettext_lazy("Happened"), help_text=gettext_lazy("Leave empty when it is not known.")
    )
    systems_affected = forms.CharField(
        label=gettext_lazy("Systems affected"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    records_affected = forms.IntegerField(
        label=gettext_lazy("Records affected (estimate)"),
        min_value=0,
        max_value=2_147_483_647,
    )
    description = forms.CharField(
        label=gettext_lazy("Description"),
        max_length=10_000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text=gettext_lazy("Stored encrypted: it may name the people concerned."),
    )
    authority = forms.ChoiceField(
        label=gettext_lazy("Authority notified"),
        required=False,
        choices=[("", gettext_lazy("None yet")), *BreachRecord.Authority.choices],
    )
    notified_at = _moment_field(
        gettext_lazy("Authority notified at"),
        help_text=gettext_lazy("Leave empty until the authority has been told."),
    )
    subscribers_told = forms.BooleanField(
        label=gettext_lazy("The affected subscribers were told"), required=False
    )
    subscribers_told_at = _moment_field(gettext_lazy("Subscribers told at"))
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        choices=BreachRecord.Status.choices,
        initial=BreachRecord.Status.OPEN,
    )

    @classmethod
    def of(cls, breach: BreachRecord) -> BreachForm:
        """The form filled with a stored breach record, to update it."""
        return cls(initial={name: getattr(breach, name) for name in cls.base_fields})

    def clean_systems_affected(self) -> str:
        return self.cleaned_data["systems_affected"].strip()

    def clean_description(self) -> str:
        return self.cleaned_data["description"].strip()

    def clean(self):
        cleaned = super().clean()
        now = timezone.now()
        moments = ("found_at", "occurred_at", "notified_at", "subscribers_told_at")
        for name in moments:
            moment = cleaned.get(name)
            if moment is None:
                continue
            if not time_in_range(moment):
                self.add_error(
                    name,
                    _("Enter a time between the years %(first)s and %(last)s.")
                    % {"first": MIN_YEAR, "last": MAX_YEAR},
                )
            elif moment > now:
                self.add_error(name, _("This time is in the future."))
        found, occurred = cleaned.get("found_at"), cleaned.get("occurred_at")
        if found and occurred and occurred > found:
            self.add_error("occurred_at", _("A breach cannot happen after it was found."))
        notified = cleaned.get("notified_at")
        if notified and not cleaned.get("authority"):
            self.add_error("authority", _("Choose the authority that was notified."))
        if found and notified and notified < found:
            self.add_error("notified_at", _("The notice cannot come before the breach was found."))
        told, told_at = cleaned.get("subscribers_told"), cleaned.get("subscribers_told_at")
        if told and told_at is None and "subscribers_told_at" not in self.errors:
            self.add_error("subscribers_told_at", _("Say when the subscribers were told."))
        if told_at is not None and not told:
            self.add_error(
                "subscribers_told",
                _("Tick this box when the subscribers were told, or clear the time."),
            )
        return cleaned

    def details(self) -> BreachDetails:
        return BreachDetails(**{name: self.cleaned_data[name] for name in self.base_fields})
