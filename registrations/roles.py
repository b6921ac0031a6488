"""Roles are groups with permissions. Views ask for a permission, never for a group name."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.management import create_permissions

COUNTER_STAFF = "Counter staff"
SUPERVISOR = "Supervisor"
COMPLIANCE_ADMIN = "Compliance admin"

# (codename, description) of the permissions declared on the models' Meta.
RECORD = "registrations.record_registration"
REVIEW = "registrations.review_registration"
REVEAL = "registrations.reveal_identity"
BROWSE_AUDIT = "registrations.browse_audit"
RECORD_BREACH = "registrations.record_breach"

ROLE_PERMISSIONS: dict[str, list[str]] = {
    COUNTER_STAFF: ["record_registration"],
    SUPERVISOR: ["review_registration", "reveal_identity"],
    COMPLIANCE_ADMIN: ["browse_audit", "record_breach"],
}


def ensure_roles(apps=None) -> None:
    """Create the role groups with their permissions; safe to run again.

    Runs from a data migration (with historical `apps`) and from seed_demo and the test
    factories, since a test database flush removes rows that migrations created.
    """
    from django.apps import apps as global_apps

    apps = apps or global_apps
    # Permissions are normally made after all migrations; a data migration needs them now.
    create_permissions(global_apps.get_app_config("registrations"), verbosity=0, apps=apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            Permission.objects.filter(
                content_type__app_label="registrations", codename__in=codenames
            )
        )


def allows(user, perm: str) -> bool:
    """Whether the user's roles grant `perm`.

    Unlike `user.has_perm`, being a superuser grants nothing here: a superuser manages stores,
    users and roles in the admin and holds a role only when given one (separation of duties).
    """
    return perm in role_permissions(user)


# Permissions whose holders may sign in with a password alone (counter staff, unless
# SECOND_FACTOR_FOR_COUNTER says otherwise). Every other permission, including those of roles
# added later, calls for a second factor: a new role is covered until someone decides otherwise.
PASSWORD_ONLY_PERMISSIONS = frozenset({RECORD})


def has_any_role(user) -> bool:
    """Whether the user may use any page at all: a role, or the administration."""
    return (
        user.is_authenticated
        and user.is_active
        and (user.is_superuser or bool(role_permissions(user)))
    )


def needs_second_factor(user) -> bool:
    """Whether the user must pass a second factor before any page is served.

    Supervisors, compliance admins, disclosure officers and anyone who can open the Django
    admin reach identity data or the audit log; counter staff only when the setting says so.
    """
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser or user.is_staff:
        return True
    held = role_permissions(user)
    if held - PASSWORD_ONLY_PERMISSIONS:
        return True
    return bool(held) and settings.SECOND_FACTOR_FOR_COUNTER


def role_permissions(user) -> frozenset[str]:
    """The permissions the user's roles grant ("app_label.codename"), read once per user object."""
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_simreg_role_perms", None)
    if cached is None:
        from django.contrib.auth.models import Permission
        from django.db.models import Q

        cached = frozenset(
            f"{app_label}.{codename}"
            for app_label, codename in Permission.objects.filter(
                Q(group__user=user) | Q(user=user)
            ).values_list("content_type__app_label", "codename")
        )
        user._simreg_role_perms = cached
    return cached
