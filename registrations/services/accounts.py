"""Stores, users and sign-in: the writes an administrator or the sign-in page makes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import (
    AuditEvent,
    Store,
    User,
)
from registrations.roles import ensure_roles


@transaction.atomic
def store_create_or_update(
    *,
    code: str,
    name: str,
    name_zh: str = "",
    address: str = "",
    actor: User | None = None,
    origin: Origin = COMMAND_LINE,
) -> Store:
    store, created = Store.objects.update_or_create(
        code=code, defaults={"name": name, "name_zh": name_zh, "address": address}
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_CHANGED,
        origin=origin,
        store=store,
        fields=["code", "name", "name_zh", "address"],
        details={"object": "store", "created": created},
    )
    return store


@transaction.atomic
def user_create_or_update(
    *,
    username: str,
    password: str,
    roles: Iterable[str] = (),
    stores: Iterable[Store] = (),
    supervised_stores: Iterable[Store] = (),
    first_name: str = "",
    last_name: str = "",
    is_superuser: bool = False,
    actor: User | None = None,
    origin: Origin = COMMAND_LINE,
) -> User:
    ensure_roles()
    user, created = User.objects.get_or_create(username=username)
    user.first_name, user.last_name = first_name, last_name
    user.is_superuser = user.is_staff = is_superuser
    user.set_password(password)
    user.save()
    user.groups.set(Group.objects.filter(name__in=list(roles)))
    user.stores.set(stores)
    user.supervised_stores.set(supervised_stores)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_CHANGED,
        origin=origin,
        fields=["password", "groups", "stores", "supervised_stores", "is_superuser"],
        details={"object": "user", "username": username, "created": created},
    )
    return user


@transaction.atomic
def user_password_changed(
    *, user: User, created: bool = False, actor: User | None = None, origin: Origin = COMMAND_LINE
) -> None:
    """Record a password set outside the services: by Django's `changepassword`, or for a
    superuser made by `createsuperuser` (`created`; without a password when none was given).
    Says that the password changed, never what to."""
    details = {"object": "user", "username": user.get_username(), "created": created}
    fields = ["is_superuser"] if created else []
    if user.has_usable_password():
        details["change"] = "password"
        fields.append("password")
    audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_CHANGED,
        origin=origin,
        fields=fields,
        details=details,
    )


def admin_change_record(
    *,
    actor: User,
    origin: Origin,
    store: Store | None = None,
    fields: Iterable[str] = (),
    details: dict[str, Any],
) -> AuditEvent:
    """A superuser added, changed or deleted a store, a user or a role in the Django admin,
    which saved it in its own transaction: this event joins it. Field names only, never values."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_CHANGED,
        origin=origin,
        store=store,
        fields=fields,
        details=details,
    )


@transaction.atomic
def decisions_mark_seen(*, user: User) -> None:
    User.objects.filter(pk=user.pk).update(decisions_seen_at=timezone.now())


@transaction.atomic
def user_password_reset(
    *, user: User, password: str, actor: User, origin: Origin = COMMAND_LINE
) -> User:
    """Give a member of staff a new password (validated by the caller's form): a superuser
    anyone's, a supervisor the counter staff of their stores. Their open sessions end with it."""
    if not selectors.staff_can_manage(actor=actor, user=user):
        raise PermissionDenied("Not yours to reset.")
    user.set_password(password)
    user.save(update_fields=["password"])
    audit_record(
        actor=actor,
        action=AuditEvent.Action.USER_CHANGED,
        origin=origin,
        store=user.stores.filter(pk__in=actor.supervised_stores.values("pk")).first(),
        fields=["password"],
        details={"object": "user", "username": user.get_username(), "reset": True},
    )
    return user
