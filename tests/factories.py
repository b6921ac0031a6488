"""Test data: stores, users in roles, registrations with identity data."""

from __future__ import annotations

import datetime
import io
import itertools

from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import documents, roles
from registrations.models import (
    DocumentCopy,
    PendingChange,
    Person,
    Registration,
    StatusChange,
    Store,
    User,
)
from registrations.services import registration_status_count_move
from registrations.validators import luhn_check_digit

_counter = itertools.count(1)

CUSTOMER = {
    "name_en": "CHAN Tai Man",
    "name_zh": "陳大文𠮷",
    "document_number": "A1234563",
    "address": "Flat 12A, 88 Nathan Road, Mong Kok, Kowloon",
    "contact_number": "+85291234567",
    "email": "tai.man.chan@example.com",
}


# The identity fields of a person, each encrypted in its own column.
PERSON_ENCRYPTED_FIELDS = [
    "document_number",
    "name_en",
    "name_zh",
    "date_of_birth",
    "address",
    "contact_number",
    "email",
]


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


def pass_second_factor(client, user: User) -> None:
    """Mark the client's session as having passed the second factor with an authenticator of
    the user's (made if needed), as django-otp does after a right code."""
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="test authenticator", defaults={"confirmed": True}
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def totp_code(device: TOTPDevice, *, at: float | None = None) -> str:
    """The code an authenticator app shows for this device now (or at the Unix time `at`)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    if at is not None:
        totp.time = at
    return f"{totp.token():0{device.digits}d}"


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
    registration = Registration.objects.create(**values)
    # The services keep the per-store counts; a record made behind their back must too.
    registration_status_count_move(store=registration.store_id, new=registration.status)
    return registration


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit."""
    return body + luhn_check_digit(body)


# Smallest files that pass the content check: the signature, then a little body.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def make_document_copy(
    registration: Registration, *, kind: str = DocumentCopy.Kind.IDENTITY, data: bytes = PNG
) -> DocumentCopy:
    """A copy stored the way the app stores one: encrypted under PRIVATE_STORAGE_ROOT."""
    return DocumentCopy.objects.create(
        registration=registration,
        kind=kind,
        stored_name=documents.write_encrypted(data),
        content_type=documents.sniff_content_type(data),
        size=len(data),
        uploaded_by=registration.created_by,
    )


def make_complete_draft(*, store: Store, created_by: User, **overrides) -> Registration:
    """A draft with all three steps done and an identity copy on file: ready to submit."""
    overrides.setdefault("furthest_step", 3)
    registration = make_registration(
        store=store, created_by=created_by, status="draft", **overrides
    )
    make_document_copy(registration)
    return registration


def make_decided(
    status: str, *, store: Store, created_by: User, reviewer: User, **overrides
) -> Registration:
    """A submission the supervisor decided (by default just now): approved, rejected, returned,
    or approved and since terminated."""
    values = {"reviewer": reviewer, "decided_at": timezone.now(), **overrides}
    return make_registration(store=store, created_by=created_by, status=status, **values)


def make_approved(*, store: Store, created_by: User, reviewer: User, **overrides):
    return make_decided(
        "approved", store=store, created_by=created_by, reviewer=reviewer, **overrides
    )


def make_returned(*, store: Store, created_by: User, reviewer: User, **overrides) -> Registration:
    """A submission sent back to the counter for correction, every step of it done."""
    values = {"furthest_step": 3, "reason_code": "document_unreadable", **overrides}
    return make_decided("returned", store=store, created_by=created_by, reviewer=reviewer, **values)


def make_pending_change(
    registration: Registration, *, requested_by: User, new: dict | None = None, **overrides
) -> PendingChange:
    """A change waiting for a supervisor, written behind the services' back: an update giving
    the customer's fields in `new` their new values, or without `new` a termination."""
    new = new or {}
    values = {
        "registration": registration,
        "kind": PendingChange.Kind.UPDATE if new else PendingChange.Kind.TERMINATION,
        "changed_fields": list(new) or ["status"],
        "requested_by": requested_by,
        **{f"new_{name}": value for name, value in new.items()},
    }
    values.update(overrides)
    return PendingChange.objects.create(**values)


def make_status_change(
    registration: Registration, *, from_status: str, to_status: str, actor: User, comment: str = ""
) -> StatusChange:
    """A line of the record's history, written behind the services' back."""
    return StatusChange.objects.create(
        registration=registration,
        from_status=from_status,
        to_status=to_status,
        actor=actor,
        comment=comment,
    )


def run_verify_audit(*args: str) -> tuple[int, str, str]:
    """`verify_audit` with these arguments: its exit code, what it printed and its errors."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


# Driving the counter flow through its pages, as a browser would.
VALID_ICCID = "8985200123456789017"
VALID_ICCID_20 = "89852001234567890126"
VALID_EID = "89049032123451234512345678901235"


def upload(data: bytes = PNG, name: str = "hkid.png", content_type: str = "image/png"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def materials_form(**overrides) -> dict:
    values = {
        "customer_kind": "individual",
        "document_type": "hkid",
        "original_sighted": "on",
        "identity_copy": upload(),
        "sim_kind": "physical",
        "iccid": VALID_ICCID,
        "eid": "",
        "msisdn": "6123 4567",
        "plan": "prepaid",
        "action": "next",
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def channel_form(**overrides) -> dict:
    values = {"channel": "counter", "online_reference": "", "action": "next"}
    values.update(overrides)
    return values


def identity_form(**overrides) -> dict:
    values = {
        "name_en": CUSTOMER["name_en"],
        "name_zh": CUSTOMER["name_zh"],
        "document_number": "a123456(3)",
        "date_of_birth": "1990-05-17",
        "nationality": "HK",
        "address": CUSTOMER["address"],
        "contact_number": "9123 4567",
        "email": CUSTOMER["email"],
        "representative_name_en": "",
        "representative_name_zh": "",
        "representative_document_type": "",
        "representative_document_number": "",
        "representative_date_of_birth": "",
        "declaration_accepted": "on",
        "action": "submit",
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def url(name: str, registration: Registration) -> str:
    """The address of one of a registration's pages."""
    return reverse(name, args=[registration.reference])


def start_draft(client) -> Registration:
    response = client.post(reverse("counter-new"))
    assert response.status_code == 302, response
    return Registration.objects.get(reference=response.url.strip("/").split("/")[1])


def walk_to_identity(client, *, materials: dict | None = None, channel: dict | None = None):
    """A new draft with steps 1 and 2 done through the pages; returns it."""
    registration = start_draft(client)
    response = client.post(
        reverse("counter-materials", args=[registration.reference]), materials or materials_form()
    )
    assert response.status_code == 302, response.context["form"].errors
    response = client.post(
        reverse("counter-channel", args=[registration.reference]), channel or channel_form()
    )
    assert response.status_code == 302, response.context["form"].errors
    registration.refresh_from_db()
    return registration
