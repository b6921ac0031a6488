"""Delivering the outbox: claim due messages, send each, record the outcome.

Several workers may sweep at once. A message is claimed by a conditional UPDATE that moves its
next attempt past a lease: only one worker's UPDATE matches, and a worker that died mid-send
leaves the message to be tried again once the lease is over. No transaction or row lock is
held while a backend talks to an SMTP server or a gateway.
"""

from __future__ import annotations

import datetime
import logging

from django.utils import timezone

from registrations.models import Notification
from registrations.notifications.backends import email_send, error_reason, sms_backend
from registrations.notifications.messages import notification_message
from registrations.services.notifications import notification_attempt_failed, notification_sent

logger = logging.getLogger(__name__)

# Longer than any backend's timeout: a send in progress is not claimed by another worker.
LEASE = datetime.timedelta(minutes=5)
BATCH = 100


def notification_claim(*, notification_id: int, now: datetime.datetime) -> bool:
    """Whether this worker got the message: one conditional UPDATE, atomic on its own."""
    return bool(
        Notification.objects.filter(
            pk=notification_id, state=Notification.State.QUEUED, next_attempt_at__lte=now
        ).update(next_attempt_at=timezone.now() + LEASE)
    )


def notification_deliver(*, notification: Notification) -> bool:
    """Send one claimed message and record what happened; whether it went out."""
    message = notification_message(notification=notification)
    try:
        if notification.channel == Notification.Channel.EMAIL:
            email_send(to=notification.recipient, subject=message.subject, text=message.text)
        else:
            sms_backend().send(to=notification.recipient, text=message.text)
    except Exception as exc:  # any failure of a backend is a retry, never a crash
        reason = error_reason(exc)
        state = notification_attempt_failed(
            notification=notification, reason=reason, now=timezone.now()
        )
        logger.warning(
            "Notification %s (%s) not delivered: %s; now %s",
            notification.pk,
            notification.channel,
            reason,
            state,
        )
        return False
    notification_sent(notification=notification, now=timezone.now())
    logger.info("Notification %s (%s) sent", notification.pk, notification.channel)
    return True


def notifications_deliver(*, limit: int = BATCH, now: datetime.datetime | None = None) -> int:
    """Deliver up to `limit` due messages; the number sent."""
    now = now or timezone.now()
    due = list(
        Notification.objects.filter(state=Notification.State.QUEUED, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for notification_id in due:
        if not notification_claim(notification_id=notification_id, now=now):
            continue
        notification = (
            Notification.objects.select_related("registration__store")
            .filter(pk=notification_id)
            .first()
        )
        if notification is not None and notification_deliver(notification=notification):
            sent += 1
    return sent
