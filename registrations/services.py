"""Writes. Every service validates, saves and writes its own audit event in one transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.db import transaction

from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, Store, User
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
