"""The audit log's filters and the chain check's anchor."""

from __future__ import annotations

from django import forms
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
    Store,
)

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
