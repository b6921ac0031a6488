"""Customer notifications: an outbox written with the change, delivered by the job worker.

Entry points:
- `notification_queue(*, registration, event)`: called inside the service transaction of a
  change; queues an SMS to the customer's contact number (or, when none was given, to the
  registration's own mobile number) and an e-mail when an address was given, in the
  registration's notice language. A delivery is enqueued once the transaction commits.
- `notifications_deliver(*, limit, now)`: claims due messages and sends them (the worker's
  task); retries with back-off are recorded by registrations.services.notifications.
- `notification_text(...)` / `notification_message(*, notification)`: what the customer reads.
- `sms_backend()`, `ConsoleSmsBackend`, `HttpSmsBackend`: where SMS go;
  `ConsoleEmailBackend`: e-mail printed with the address masked, for development.

Other code imports from here, never from the modules.
"""

from registrations.notifications.backends import (
    ConsoleEmailBackend,
    ConsoleSmsBackend,
    DeliveryError,
    HttpSmsBackend,
    SmsBackend,
    sms_backend,
)
from registrations.notifications.messages import Message, notification_message, notification_text
from registrations.notifications.outbox import notification_queue, notification_recipients

__all__ = [
    "ConsoleEmailBackend",
    "ConsoleSmsBackend",
    "DeliveryError",
    "HttpSmsBackend",
    "Message",
    "SmsBackend",
    "notification_message",
    "notification_queue",
    "notification_recipients",
    "notification_text",
    "notifications_deliver",
    "sms_backend",
]


def __getattr__(name: str):
    # Delivery records its outcomes through the services, which import notification_queue
    # from here: it is loaded on first use.
    if name == "notifications_deliver":
        from registrations.notifications.delivery import notifications_deliver

        return notifications_deliver
    raise AttributeError(name)
