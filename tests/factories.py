"""Test data: stores, users in roles, registrations with identity data."""

from __future__ import annotations

import datetime
import itertools

from django.contrib.auth.models import Group
from django.utils import timezone

from registrations import roles
from registrations.models import Person, Registration, Store, User

_counter = itertools.count(1)

CUSTOMER = {
    "name_en": "CHAN Tai Man",
    "name_zh": "陳大文𠮷",
    "document_number": "A1234563",
    "address": "Flat 12A, 88 Nathan Road, Mong Kok, Kowloon",
    "contact_number": "+85291234567",
    "email": "tai.man.chan@example.com",
}


def make_store(**overrides) -> Store:
    n = next(_counter)
    values = {"code": f"S{n:03d}", "name": f"Store {n}", "name_zh": f"分店{n}"}
    values.update(overrides)
    return Store.objects.create(**values)


def make_user(role: str | None = None, *, stores=(), supervises=(), **overrides) -> User:
    roles.ensure_roles()
    n = next(_counter)
    values = {"username": f"user{n}", "password": "correct horse battery staple"}
    values.update(overrides)
    user = User.objects.create_user(**values)
    if role:
        user.groups.add(Group.objects.get(name=role))
    user.stores.set(stores)
    user.supervised_stores.set(supervises)
    return user


def make_person(**overrides) -> Person:
    values = {
        "kind": Person.Kind.INDIVIDUAL,
        "document_type": "hkid",
        "date_of_birth": datetime.date(1990, 5, 17),
        "nationality": "HK",
        **CUSTOMER,
    }
    values.update(overrides)
    return Person.objects.create(**values)


def make_registration(*, store: Store, created_by: User, status: str = "draft", **overrides):
    """A registration in any status, bypassing the counter flow (for tests of later stages)."""
    n = next(_counter)
    customer = overrides.pop("customer", None) or make_person()
    values = {
        "store": store,
        "created_by": created_by,
        "customer": customer,
        "status": status,
        "sim_kind": Registration.SimKind.PHYSICAL,
        "iccid": "",
        "msisdn": f"+852912{n:05d}",
        "plan": Registration.Plan.PREPAID,
        "original_sighted": True,
        "declaration_accepted": True,
    }
    if status != "draft":
        values.update(submitted_by=created_by, submitted_at=timezone.now())
    values.update(overrides)
    if values["sim_kind"] == Registration.SimKind.PHYSICAL and not values["iccid"]:
        values["iccid"] = luhn_complete(f"898520{n:012d}")
    return Registration.objects.create(**values)


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return body + str((10 - total % 10) % 10)
