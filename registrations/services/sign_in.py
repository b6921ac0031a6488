"""The sign-in throttle: every attempt is counted before its password is checked.

Two counters hold an attempt back, each at most SIGN_IN_MAX_FAILURES attempts a window:

- one per *user name and client address*, over SIGN_IN_LOCK_MINUTES. A success resets it, and
  makes the address one where the name signs in (for SIGN_IN_TRUSTED_DAYS);
- one per *user name*, from any address where the name did not sign in lately. Its window
  starts at SIGN_IN_LOCK_MINUTES and doubles each time a window is used up, up to
  SIGN_IN_LOCK_MAX_HOURS, so that guessing from many addresses gets slower and slower.

So a name's password is checked at most SIGN_IN_MAX_FAILURES times a window from addresses
where it never signed in, whatever the number of attempts in parallel; and someone who uses
the name's limit up elsewhere does not keep its owner out of the stores where they sign in.
A whole store shares one address behind its router: nothing is ever locked by address alone.
Names that belong to nobody are counted the same way, so the answers do not tell which exist.

Each count is its own short transaction holding the counters' row locks (SQLite: the write
lock), committed before the password hash runs.

The audit events of signing in and out are written here too, for the receivers of Django's auth
signals.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registrations import metrics, selectors
from registrations.audit import Origin, audit_record
from registrations.models import AuditEvent, SignInThrottle, User

# Strikes stop counting here: 2**16 base windows are far beyond any SIGN_IN_LOCK_MAX_HOURS, and
# the power stays a small number.
MAX_STRIKES = 16
# A name hammered while locked is recorded once a minute, not once an attempt: each event is an
# append to the audit log.
REFUSAL_RECORD_INTERVAL = datetime.timedelta(minutes=1)


@dataclass(frozen=True)
class SignInAttempt:
    """One attempt, as counted: whether its password may be checked, and what to tell the user."""

    name_key: str
    address_key: str
    allowed: bool
    # Attempts left before a lock once this one has failed (allowed attempts only).
    remaining: int
    # When the counter that holds the attempt back (or would, once it is used up) opens again.
    locked_until: datetime.datetime
    counted_by_name: bool
    # The window of the name's counter the attempt was counted in.
    name_window_ends: datetime.datetime | None = None


def _base_window() -> datetime.timedelta:
    return datetime.timedelta(minutes=settings.SIGN_IN_LOCK_MINUTES)


def name_window(*, strikes: int) -> datetime.timedelta:
    """How long a user name's window lasts after `strikes` windows used up one after the other."""
    longest = datetime.timedelta(hours=settings.SIGN_IN_LOCK_MAX_HOURS)
    return max(_base_window(), min(_base_window() * 2 ** min(strikes, MAX_STRIKES), longest))


def _roll_over(row: SignInThrottle, *, now: datetime.datetime, limit: int) -> None:
    """Start a new window on a counter whose window is over (or that has none yet)."""
    if row.window_ends is not None and now < row.window_ends:
        return
    if row.scope == SignInThrottle.Scope.NAME:
        longest = datetime.timedelta(hours=settings.SIGN_IN_LOCK_MAX_HOURS)
        if row.window_ends is None or now >= row.window_ends + longest:
            row.strikes = 0
        elif row.attempts >= limit:
            row.strikes = min(row.strikes + 1, MAX_STRIKES)
        else:
            row.strikes = max(row.strikes - 1, 0)
        row.window_ends = now + name_window(strikes=row.strikes)
    else:
        row.window_ends = now + _base_window()
    row.attempts = 0


def _locked_rows(*, name_key: str, address_key: str) -> tuple[SignInThrottle, SignInThrottle]:
    """The two counters, created when missing, locked until the transaction ends."""
    rows: dict[str, SignInThrottle] = {}
    # Twice: a purge of idle counters may delete one between the insert and the lock.
    for _try in range(2):
        SignInThrottle.objects.bulk_create(
            [
                SignInThrottle(key=name_key, scope=SignInThrottle.Scope.NAME),
                SignInThrottle(key=address_key, scope=SignInThrottle.Scope.ADDRESS),
            ],
            ignore_conflicts=True,
        )
        rows = {
            row.key: row
            for row in SignInThrottle.objects.select_for_update()
            .filter(key__in=[name_key, address_key])
            .order_by("key")
        }
        if len(rows) == 2:
            break
    return rows[name_key], rows[address_key]


@transaction.atomic
def sign_in_attempt_start(
    *, username: str, origin: Origin, now: datetime.datetime | None = None
) -> SignInAttempt:
    """Count an attempt before its password is checked, or refuse it (an audit event).

    Call it outside any transaction: its own commits at once, so that the row locks are not
    held while the password hash runs.
    """
    now = now or timezone.now()
    limit = settings.SIGN_IN_MAX_FAILURES
    name_key, address_key = selectors.sign_in_keys(username=username, ip=origin.ip)
    by_name, by_address = _locked_rows(name_key=name_key, address_key=address_key)
    trusted = by_address.trusted_until is not None and now < by_address.trusted_until
    counters = [by_address] if trusted else [by_address, by_name]
    for row in counters:
        _roll_over(row, now=now, limit=limit)
    full = [row for row in counters if row.attempts >= limit]
    if full:
        locked_until = max(row.window_ends for row in full)
        metrics.sign_in_failed("locked")
        _refusal_record(row=by_name, username=username, origin=origin, now=now)
        return SignInAttempt(
            name_key=name_key,
            address_key=address_key,
            allowed=False,
            remaining=0,
            locked_until=locked_until,
            counted_by_name=not trusted,
        )
    for row in counters:
        row.attempts += 1
        row.save(update_fields=["attempts", "window_ends", "strikes"])
    tightest = min(counters, key=lambda row: (limit - row.attempts, row.window_ends))
    return SignInAttempt(
        name_key=name_key,
        address_key=address_key,
        allowed=True,
        remaining=limit - tightest.attempts,
        locked_until=tightest.window_ends,
        counted_by_name=not trusted,
        name_window_ends=None if trusted else by_name.window_ends,
    )


def _refusal_record(
    *, row: SignInThrottle, username: str, origin: Origin, now: datetime.datetime
) -> None:
    """A refused attempt is a failed sign-in marked "locked", at most one a minute per name."""
    recorded = row.refusal_recorded_at
    if recorded is not None and recorded <= now < recorded + REFUSAL_RECORD_INTERVAL:
        return
    row.refusal_recorded_at = now
    row.save(update_fields=["refusal_recorded_at"])
    user_sign_in_failed(username=username, origin=origin, reason="locked")


@transaction.atomic
def sign_in_attempt_succeeded(
    *, attempt: SignInAttempt, now: datetime.datetime | None = None
) -> None:
    """The password was right: the attempt no longer counts against the name, the counter of
    the name at this address starts again, and the address becomes one where the name signs in.
    """
    now = now or timezone.now()
    by_name, by_address = _locked_rows(name_key=attempt.name_key, address_key=attempt.address_key)
    by_address.attempts = 0
    by_address.window_ends = None
    by_address.trusted_until = now + datetime.timedelta(days=settings.SIGN_IN_TRUSTED_DAYS)
    by_address.save(update_fields=["attempts", "window_ends", "trusted_until"])
    # Only in the window it was counted in: a new one holds other attempts.
    same_window = by_name.window_ends == attempt.name_window_ends
    if attempt.counted_by_name and same_window and by_name.attempts > 0:
        by_name.attempts -= 1
        by_name.save(update_fields=["attempts"])


@transaction.atomic
def sign_in_counters_purge(*, now: datetime.datetime | None = None) -> int:
    """Delete the sign-in counters that hold nothing back any more. Returns how many."""
    deleted, _by_model = selectors.sign_in_counters_idle(now=now or timezone.now()).delete()
    return deleted


# Sign-in, sign-out and failed sign-in as Django's auth signals report them (registrations.sign_in).
# Each event is one statement, atomic on its own: no transaction around it.


def user_signed_in(*, user: User, origin: Origin) -> AuditEvent:
    """The user's password was accepted, on the app's sign-in page or the admin's."""
    return audit_record(actor=user, action=AuditEvent.Action.LOGIN, origin=origin)


def user_signed_out(
    *, user: User, origin: Origin, details: dict[str, Any] | None = None
) -> AuditEvent:
    """The session ended; `details` say why when the user did not sign out themselves."""
    return audit_record(actor=user, action=AuditEvent.Action.LOGOUT, origin=origin, details=details)


def user_sign_in_failed(*, username: str, origin: Origin, reason: str = "") -> AuditEvent:
    """A sign-in was refused: under the user's name, or a pseudonym of a name nobody has."""
    user, logged_name = selectors.sign_in_name(username=username)
    return audit_record(
        actor=user,
        actor_username=logged_name,
        action=AuditEvent.Action.LOGIN_FAILED,
        origin=origin,
        reason=reason,
    )
