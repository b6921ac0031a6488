"""Opening a document copy: the reason asked for first."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from registrations.models import DocumentReason


class DocumentViewForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why do you need to see this copy?"),
        choices=[("", "---------"), *DocumentReason.choices],
        error_messages={"required": _("Say why you need to see this copy.")},
    )
