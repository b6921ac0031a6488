from registrations import roles
from registrations.middleware import idle_limit_seconds, idle_seconds_left


def navigation(request) -> dict:
    """Which parts of the navigation the signed-in user's role opens."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {
        "can_record": roles.allows(user, roles.RECORD),
        "can_review": roles.allows(user, roles.REVIEW),
        "can_audit": roles.allows(user, roles.BROWSE_AUDIT),
    }


def session_timing(request) -> dict:
    """Seconds left before the idle sign-out, for the warning script (see base.html)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "session"):
        return {}
    left = idle_seconds_left(request)
    if left is None:
        return {}
    # A minute's warning, or half the limit when the limit is short.
    warning = min(60, idle_limit_seconds() // 2)
    return {"idle_seconds_left": left, "idle_warning_seconds": warning}
