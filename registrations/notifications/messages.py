"""The text a customer receives: rendered at delivery time from the event, the reference and
the language, so the outbox never stores a message body.

A message holds the reference, the outcome (for a refusal, the reason code's label) and the
operator's and store's names: never an identity value, nor a reviewer's free-text comment.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from registrations.models import Notification, ReasonCode

Event = Notification.Event

# Events that tell of a refusal, and where their reason code is read.
_REFUSALS = (Event.REJECTED, Event.RETURNED, Event.CHANGE_REFUSED)


@dataclass(frozen=True)
class Message:
    subject: str
    text: str


def _outcome(event: str) -> str:
    return {
        Event.SUBMITTED: _(
            "has been received and is waiting for review. We will tell you the result."
        ),
        Event.APPROVED: _("has been approved. Your SIM is registered."),
        Event.REJECTED: _("has been rejected."),
        Event.RETURNED: _(
            "has been returned for correction. Please bring the documents to a store."
        ),
        Event.UPDATED: _("has been updated: the change of information you asked for is approved."),
        Event.CHANGE_REFUSED: _("is unchanged: the change you asked for was refused."),
        Event.TERMINATED: _("has been terminated."),
        Event.SUSPENDED: _(
            "has been suspended after your SIM was reported. Ask at any store for a replacement."
        ),
        Event.REPLACED: _("is active again: your replacement SIM is approved."),
    }[event]


def notification_text(
    *, event: str, reference: str, store_name: str, language: str, reason_code: str = ""
) -> Message:
    """The subject and text of one message, in `language` (en or zh-hant)."""
    with translation.override(language):
        values = {
            "operator": settings.NOTIFY_OPERATOR_NAME,
            "reference": reference,
            "store": store_name,
            "outcome": _outcome(event),
        }
        text = _("%(operator)s: your SIM registration %(reference)s %(outcome)s") % values
        if event in _REFUSALS and reason_code in ReasonCode.values:
            text += " " + _("Reason: %(reason)s.") % {"reason": ReasonCode(reason_code).label}
        text += " " + _("Store: %(store)s.") % values
        subject = _("%(operator)s: SIM registration %(reference)s: %(event)s") % {
            **values,
            "event": Event(event).label,
        }
        return Message(subject=str(subject), text=str(text))


def notification_message(*, notification: Notification) -> Message:
    """The message of an outbox row, from its registration's reference and store."""
    registration = notification.registration
    store = registration.store
    with translation.override(notification.language):
        store_name = store.display_name
    return notification_text(
        event=notification.event,
        reference=registration.reference,
        store_name=store_name,
        language=notification.language,
        reason_code=notification.reason_code,
    )
