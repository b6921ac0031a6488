"""Stores, users and sign-in: the writes an administrator or the sign-in page makes."""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.contrib.auth.models import Group
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
def decisions_mark_seen(*, user: User) -> None:
    User.objects.filter(pk=user.pk).update(decisions_seen_at=timezone.now())


def sign_in_refused(*, username: str, origin: Origin = COMMAND_LINE) -> None:
    """A sign-in refused because the user name is locked: a failed sign-in, marked as such.

    At most one such event per name a minute, so that a script hammering a locked name cannot
    flood the audit log (each append takes the chain's lock).
    """
    user, logged_name = selectors.sign_in_name(username=username)
    recently = AuditEvent.objects.filter(
        actor_username=logged_name,
        action=AuditEvent.Action.LOGIN_FAILED,
        reason="locked",
        at__gte=timezone.now() - datetime.timedelta(minutes=1),
    )
    if recently.exists():
        return
    audit_record(
        actor=user,
        actor_username=logged_name,
        action=AuditEvent.Action.LOGIN_FAILED,
        origin=origin,
        reason="locked",
    )
