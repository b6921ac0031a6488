from registrations import roles


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
