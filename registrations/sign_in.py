"""Sign-in, sign-out and failed sign-in are audit events.

Django's auth signals are the one place every login path passes through (the login page, the
admin's), so these receivers hand each to the audit service.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from registrations import metrics
from registrations.audit import Origin, audit_record
from registrations.middleware import SIGN_OUT_DETAILS_ATTRIBUTE, start_session_clocks
from registrations.models import AuditEvent
from registrations.selectors import sign_in_name


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs) -> None:
    audit_record(actor=user, action=AuditEvent.Action.LOGIN, origin=Origin.of(request))
    if request is not None and hasattr(request, "session"):
        # The idle and the absolute session limits count from here.
        start_session_clocks(request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        # Why the session ended when the user did not sign out themselves (idle, too long).
        details = getattr(request, SIGN_OUT_DETAILS_ATTRIBUTE, None)
        audit_record(
            actor=user,
            action=AuditEvent.Action.LOGOUT,
            origin=Origin.of(request),
            details=details,
        )


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    typed = str(credentials.get(get_user_model().USERNAME_FIELD, ""))[:150]
    metrics.sign_in_failed("password")
    known, logged_name = sign_in_name(username=typed)
    audit_record(
        actor=known,
        actor_username=logged_name,
        action=AuditEvent.Action.LOGIN_FAILED,
        origin=Origin.of(request),
    )
