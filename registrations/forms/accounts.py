"""Signing in: the password step with its attempt counters, the second factor's codes."""

from __future__ import annotations

import math
import re

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from registrations import services
from registrations.audit import Origin
from registrations.services.second_factor import normalise_recovery_code

# Sign-in -----------------------------------------------------------------------------------------


class SignInLockMixin:
    """Count each attempt before its password is checked, and refuse it once the user name's
    counters are used up (registrations.services.sign_in); say how many attempts are left."""

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            # No password is checked without both: nothing to count.
            return super().clean()
        attempt = services.sign_in_attempt_start(username=username, origin=Origin.of(self.request))
        if not attempt.allowed:
            raise self.locked_error(attempt)
        try:
            cleaned = super().clean()
        except ValidationError as error:
            if self.get_user() is None:
                # The password did not match (or the name belongs to nobody).
                raise ValidationError([*error.error_list, self.remaining_error(attempt)]) from None
            # The right password, for an account that may not sign in here.
            services.sign_in_attempt_succeeded(attempt=attempt)
            raise
        services.sign_in_attempt_succeeded(attempt=attempt)
        return cleaned

    @staticmethod
    def locked_error(attempt: services.SignInAttempt) -> ValidationError:
        minutes = max(1, math.ceil((attempt.locked_until - timezone.now()).total_seconds() / 60))
        return ValidationError(
            _("Too many failed sign-ins for this user name. Try again in %(minutes)d minutes."),
            code="locked",
            params={"minutes": minutes},
        )

    def remaining_error(self, attempt: services.SignInAttempt) -> ValidationError:
        if attempt.remaining <= 0:
            return self.locked_error(attempt)
        return ValidationError(
            ngettext(
                "%(count)d more attempt before this user name is locked for a while.",
                "%(count)d more attempts before this user name is locked for a while.",
                attempt.remaining,
            ),
            code="attempts_left",
            params={"count": attempt.remaining},
        )


class SignInForm(SignInLockMixin, AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": _("The user name or password is not correct. Both are case-sensitive."),
    }


class AdminSignInForm(SignInLockMixin, AdminAuthenticationForm):
    pass


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
