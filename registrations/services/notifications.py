"""The outbox's writes that the audit log records: a message sent, a message given up on, a
supervisor's retry, and the list of failures a supervisor opens (it decrypts recipients to
mask them). Delivery itself (claiming rows, talking to the backends) is
registrations.notifications; it calls these once a backend has answered, outside any
transaction that was open while it talked.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import F

from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, Notification, User

# The system, not a person, delivers: the events name the worker.
WORKER = "job-worker"


def notification_backoff(*, attempts: int) -> datetime.timedelta:
    """How long after its `attempts`-th failure a message is tried again: 1, 2, 4, 8 ...
    minutes, at most NOTIFY_MAX_BACKOFF_MINUTES."""
    minutes = min(2 ** max(attempts - 1, 0), settings.NOTIFY_MAX_BACKOFF_MINUTES)
    return datetime.timedelta(minutes=minutes)


def _details(notification: Notification, **extra) -> dict:
    return {
        "notification": notification.pk,
        "channel": notification.channel,
        "event": notification.event,
        **extra,
    }


@transaction.atomic
def notification_sent(*, notification: Notification, now: datetime.datetime) -> bool:
    """A backend took the message: it is sent, and the audit log says so (never to whom).
    False when the row was no longer waiting (sent already, or deleted by a purge)."""
    updated = Notification.objects.filter(
        pk=notification.pk, state=Notification.State.QUEUED
    ).update(state=Notification.State.SENT, sent_at=now, attempts=F("attempts") + 1, last_error="")
    if not updated:
        return False
    audit_record(
        actor=None,
        actor_username=WORKER,
        action=AuditEvent.Action.NOTIFICATION_SENT,
        registration=notification.registration,
        details=_details(notification),
    )
    return True


@transaction.atomic
def notification_attempt_failed(
    *, notification: Notification, reason: str, now: datetime.datetime
) -> Notification.State | None:
    """A backend refused the message or did not answer: try again after a back-off, or, after
    NOTIFY_MAX_ATTEMPTS, give it up for the supervisors (audited). The change the message tells
    about stays as it is. The new state, or None when the row was no longer waiting."""
    row = (
        Notification.objects.select_for_update()
        .filter(pk=notification.pk, state=Notification.State.QUEUED)
        .only("attempts")
        .first()
    )
    if row is None:
        return None
    attempts = row.attempts + 1
    if attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        state = Notification.State.FAILED
        next_attempt_at = now
    else:
        state = Notification.State.QUEUED
        next_attempt_at = now + notification_backoff(attempts=attempts)
    Notification.objects.filter(pk=row.pk).update(
        state=state,
        attempts=attempts,
        next_attempt_at=next_attempt_at,
        last_error=reason[:200],
    )
    if state == Notification.State.FAILED:
        audit_record(
            actor=None,
            actor_username=WORKER,
            action=AuditEvent.Action.NOTIFICATION_FAILED,
            registration=notification.registration,
            details=_details(notification, attempts=attempts, error=reason[:200]),
        )
    return state


@transaction.atomic
def notification_retry(
    *,
    notification: Notification,
    actor: User,
    now: datetime.datetime,
    origin: Origin = COMMAND_LINE,
) -> bool:
    """A supervisor asks for a message given up on to be tried again now (the gateway or mail
    server mended): one more attempt. A message still being retried is left to its back-off,
    since a worker may be sending it at this moment. Audited as a write on the outbox. False
    when it is no longer given up."""
    updated = Notification.objects.filter(
        pk=notification.pk,
        state=Notification.State.FAILED,
    ).update(state=Notification.State.QUEUED, next_attempt_at=now)
    if not updated:
        return False
    audit_record(
        actor=actor,
        origin=origin,
        action=AuditEvent.Action.NOTIFICATION_RETRIED,
        registration=notification.registration,
        details=_details(notification, attempts=notification.attempts),
    )
    return True


def notification_view_list(
    *, actor: User, origin: Origin = COMMAND_LINE, references: Iterable[str]
) -> AuditEvent:
    """The supervisors' list of undelivered messages was shown, recipients masked: the
    references it showed."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.LISTED,
        origin=origin,
        details={"view": "review-notifications", "references": sorted(set(references))},
    )
