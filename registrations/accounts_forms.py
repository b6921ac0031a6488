"""Forms of the sign-in's second step and of the staff a supervisor looks after."""

from __future__ import annotations

import re

from django import forms
from django.utils.translation import gettext_lazy as _

from registrations.services.second_factor import normalise_recovery_code

# What django-otp's recovery codes (static tokens) are made of: 8 characters of base32.
RECOVERY_CODE = re.compile(r"^[a-z2-7]{8}$")


class SecondFactorCodeForm(forms.Form):
    otp_token = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "autofocus": True,
                "class": "font-monospace",
                "size": 8,
            }
        ),
        error_messages={"required": _("Enter the 6-digit code shown in your authenticator app.")},
    )

    def clean_otp_token(self) -> str:
        code = re.sub(r"\s", "", self.cleaned_data["otp_token"])
        if not re.fullmatch(r"[0-9]{6}", code):
            raise forms.ValidationError(
                _("Enter the 6-digit code shown in your authenticator app."), code="format"
            )
        return code


class RecoveryCodeForm(forms.Form):
    recovery_code = forms.CharField(
        label=_("Recovery code"),
        max_length=20,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "off",
                "autocapitalize": "none",
                "spellcheck": "false",
                "autofocus": True,
                "class": "font-monospace",
            }
        ),
        error_messages={"required": _("Enter one of your recovery codes.")},
    )

    def clean_recovery_code(self) -> str:
        code = normalise_recovery_code(self.cleaned_data["recovery_code"])
        if not RECOVERY_CODE.match(code):
            raise forms.ValidationError(
                _("A recovery code has 8 letters and digits, for example abcd-2345."),
                code="format",
            )
        return code
