"""Sign-in, sign-out and failed sign-in are audit events.

Django's auth signals are the one place every login path passes through (the login page, the
admin's), so these receivers hand each to the service that records it.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from registrations import metrics, services
from registrations.audit import Origin
from registrations.middleware import SIGN_OUT_DETAILS_ATTRIBUTE, start_session_clocks


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    services.user_signed_in(user=user, origin=Origin.of(request))
    if request is not None and hasattr(request, "session"):
        # The idle and the absolute session limits count from here.
        start_session_clocks(request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        # Why the session ended when the user did not sign out themselves (idle, too long).
        details = getattr(request, SIGN_OUT_DETAILS_ATTRIBUTE, None)
        services.user_signed_out(user=user, origin=Origin.of(request), details=details)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    typed = str(credentials.get(get_user_model().USERNAME_FIELD, ""))[:150]
    metrics.sign_in_failed("password")
    services.user_sign_in_failed(username=typed, origin=Origin.of(request))
