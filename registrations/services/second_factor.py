"""The second factor: enrolment of an authenticator app (TOTP), codes at sign-in, recovery codes
and resets.

Each write is an audit event, holding how the factor was used and never a key, a code or a
recovery code. Wrong codes are throttled per device by django-otp (1, 2, 4, 8 ... seconds
between attempts); the failed attempt is still recorded.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, User

RECOVERY_CODE_COUNT = 10
# A QR code left on screen stays valid this long; after that the enrolment page shows a new
# key, so that a key glimpsed on an abandoned screen cannot be enrolled later.
ENROLMENT_KEY_MINUTES = 10
TOTP = "totp"
RECOVERY_CODE = "recovery_code"


@dataclass(frozen=True)
class CodeCheck:
    """The outcome of a code: the device that accepted it, or how long to wait when throttled."""

    device: Device | None = None
    wait_seconds: int = 0
    # New recovery codes, at enrolment only: shown once, never stored in the clear elsewhere.
    recovery_codes: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        return self.device is not None


def normalise_recovery_code(code: str) -> str:
    """Recovery codes are shown as `abcd-efgh`; typed with or without the dash, any case."""
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _throttled_for(device: Device) -> int:
    """Seconds until the device accepts another try; 0 when it does now."""
    allowed, info = device.verify_is_allowed()
    if allowed or not info or "locked_until" not in info:
        return 0
    return max(1, math.ceil((info["locked_until"] - timezone.now()).total_seconds()))


def _record_failure(
    *, user: User, origin: Origin, method: str, stage: str, wait_seconds: int
) -> None:
    details = {"method": method, "stage": stage}
    if wait_seconds:
        # Tries refused while throttled: at most one event a minute, so that a script hammering
        # the page cannot flood the log (each append takes its chain's lock).
        recently = AuditEvent.objects.filter(
            actor=user,
            action=AuditEvent.Action.SECOND_FACTOR_FAILED,
            at__gte=timezone.now() - datetime.timedelta(minutes=1),
            details__throttled=True,
        )
        if recently.exists():
            return
        details["throttled"] = True
    audit_record(
        actor=user,
        action=AuditEvent.Action.SECOND_FACTOR_FAILED,
        origin=origin,
        details=details,
    )


@transaction.atomic
def second_factor_verify(
    *, user: User, code: str, method: str = TOTP, origin: Origin = COMMAND_LINE
) -> CodeCheck:
    """Check a code at sign-in: from the authenticator app, or one of the recovery codes.

    A recovery code works once: django-otp deletes it when it is accepted.
    """
    model = StaticDevice if method == RECOVERY_CODE else TOTPDevice
    device = (
        model.objects.select_for_update().filter(user=user, confirmed=True).order_by("pk").first()
    )
    if device is None:
        _record_failure(user=user, origin=origin, method=method, stage="sign_in", wait_seconds=0)
        return CodeCheck()
    wait = _throttled_for(device)
    if wait:
        _record_failure(user=user, origin=origin, method=method, stage="sign_in", wait_seconds=wait)
        return CodeCheck(wait_seconds=wait)
    token = normalise_recovery_code(code) if method == RECOVERY_CODE else code.strip()
    if not device.verify_token(token):
        _record_failure(user=user, origin=origin, method=method, stage="sign_in", wait_seconds=0)
        return CodeCheck()
    details: dict = {"method": method}
    if method == RECOVERY_CODE:
        details["recovery_codes_left"] = selectors.second_factor_recovery_codes_left(user=user)
    audit_record(
        actor=user, action=AuditEvent.Action.SECOND_FACTOR_USED, origin=origin, details=details
    )
    return CodeCheck(device=device)


@transaction.atomic
def second_factor_enrolment_start(*, user: User) -> TOTPDevice:
    """The authenticator key the enrolment page shows as a QR code, not in force yet.

    The same key for a while, so that a reload does not undo a scan. No audit event: an
    unconfirmed key grants nothing; confirming it is the event (second_factor_enrol_confirm).
    """
    if selectors.second_factor_device_for(user=user) is not None:
        raise PermissionDenied("Already enrolled: a reset comes first.")
    since = timezone.now() - datetime.timedelta(minutes=ENROLMENT_KEY_MINUTES)
    device = selectors.second_factor_pending_device_for(user=user, since=since)
    if device is None:
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    return device


@transaction.atomic
def second_factor_enrol_confirm(
    *, user: User, code: str, origin: Origin = COMMAND_LINE
) -> CodeCheck:
    """Confirm the key being enrolled with a code from the app; on success the device is in
    force and a new set of recovery codes replaces any earlier one."""
    if selectors.second_factor_device_for(user=user) is not None:
        raise PermissionDenied("Already enrolled: a reset comes first.")
    since = timezone.now() - datetime.timedelta(minutes=ENROLMENT_KEY_MINUTES)
    device = selectors.second_factor_pending_device_for(user=user, since=since)
    if device is None:
        _record_failure(user=user, origin=origin, method=TOTP, stage="enrolment", wait_seconds=0)
        return CodeCheck()
    device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
    wait = _throttled_for(device)
    if wait:
        _record_failure(user=user, origin=origin, method=TOTP, stage="enrolment", wait_seconds=wait)
        return CodeCheck(wait_seconds=wait)
    if not device.verify_token(code.strip()):
        _record_failure(user=user, origin=origin, method=TOTP, stage="enrolment", wait_seconds=0)
        return CodeCheck()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    codes = _new_recovery_codes(user=user)
    audit_record(
        actor=user,
        action=AuditEvent.Action.SECOND_FACTOR_ENROLLED,
        origin=origin,
        details={"method": TOTP, "recovery_codes": len(codes)},
    )
    return CodeCheck(device=device, recovery_codes=codes)


def _new_recovery_codes(*, user: User) -> tuple[str, ...]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="recovery codes", confirmed=True)
    codes = tuple(StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT))
    StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


@transaction.atomic
def second_factor_enrol_key(
    *, user: User, key: str, actor: User | None = None, origin: Origin = COMMAND_LINE
) -> TOTPDevice:
    """Enrol an authenticator with a given key (hex), replacing any other: for provisioning
    from the command line, such as the demo users of seed_demo. No recovery codes."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name="authenticator", key=key, confirmed=True)
    audit_record(
        actor=actor,
        action=AuditEvent.Action.SECOND_FACTOR_ENROLLED,
        origin=origin,
        details={"method": TOTP, "username": user.get_username(), "provisioned": True},
    )
    return device


@transaction.atomic
def second_factor_reset(*, user: User, actor: User, origin: Origin = COMMAND_LINE) -> int:
    """Remove the user's authenticator and recovery codes: they enrol again at their next
    sign-in. A superuser may reset anyone's; a supervisor the counter staff of their stores."""
    if not selectors.staff_can_manage(actor=actor, user=user):
        raise PermissionDenied("Not yours to reset.")
    removed = sum(
        model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
        for model in (TOTPDevice, StaticDevice)
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.SECOND_FACTOR_RESET,
        origin=origin,
        store=_shared_store(actor=actor, user=user),
        details={"object": "user", "username": user.get_username(), "devices": removed},
    )
    return removed


def _shared_store(*, actor: User, user: User):
    """The store on whose behalf a supervisor acted, for the audit log's store column."""
    return user.stores.filter(pk__in=actor.supervised_stores.values("pk")).order_by("code").first()
