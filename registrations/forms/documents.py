"""Opening a document copy: the reason asked for first."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

DOCUMENT_REASONS = [
    ("check_against_original", _("Check the copy against the original document")),
    ("correct_returned_record", _("Correct a record returned for correction")),
    ("review_submission", _("Review the submission")),
    ("customer_request", _("The customer asked about the copy")),
    ("quality_check", _("Quality check")),
]


class DocumentViewForm(forms.Form):
    reason = forms.ChoiceField(
        label=_("Why do you need to see this copy?"),
        choices=[("", "---------"), *DOCUMENT_REASONS],
        error_messages={"required": _("Say why you need to see this copy.")},
    )
