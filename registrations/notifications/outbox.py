"""The outbox: messages written in the transaction of the change they tell about."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from registrations.models import Notification, Registration


def notification_recipients(*, registration: Registration) -> list[tuple[str, str]]:
    """(channel, recipient) of each message an event sends: an SMS to the customer's contact
    number, or to the registration's own mobile number when no contact number was given (the
    SIM being registered is the customer's); an e-mail when an e-mail address was given."""
    customer = registration.customer
    number = (customer.contact_number if customer is not None else "") or registration.msisdn
    email = customer.email if customer is not None else ""
    recipients = []
    if number:
        recipients.append((Notification.Channel.SMS, number))
    if email:
        recipients.append((Notification.Channel.EMAIL, email))
    return recipients


def notification_queue(
    *, registration: Registration, event: str, reason_code: str = ""
) -> list[Notification]:
    """Queue the messages that tell the customer about `event`, in the caller's transaction.

    Call it inside the service that makes the change: a change rolled back queues nothing, and
    a message is never queued for a change that did not happen. Once the transaction commits,
    a delivery is enqueued at once; the worker's periodic sweep picks up anything missed.
    `reason_code` is a refusal's reason, kept with the message.
    """
    if event not in Notification.Event.values:
        raise ValueError(f"Unknown notification event {event!r}.")
    now = timezone.now()
    rows = [
        Notification(
            registration=registration,
            store_id=registration.store_id,
            channel=channel,
            event=event,
            reason_code=reason_code,
            language=registration.notice_language or Registration.NoticeLanguage.ENGLISH,
            recipient=recipient,
            next_attempt_at=now,
            created_at=now,
        )
        for channel, recipient in notification_recipients(registration=registration)
    ]
    if not rows:
        return []
    for row in rows:
        row.save()
    transaction.on_commit(_enqueue_delivery)
    return rows


def _enqueue_delivery() -> None:
    # Imported here: the tasks module imports the services, which import this package.
    from registrations.tasks import notifications_deliver_due

    notifications_deliver_due.enqueue()
