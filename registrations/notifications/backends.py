"""Where messages go: e-mail through Django's e-mail backends, SMS through a small backend
chosen by the SIMREG_SMS_BACKEND setting (`console` for development, `http` for a generic SMS
gateway, or the dotted path of a class with the same `send` method).

A backend raises DeliveryError (or any exception) when a message did not go out. The reason
kept is the exception's class or the gateway's status code: never a server's text, which may
repeat the recipient.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends import console
from django.utils.module_loading import import_string

from registrations.masking import mask_mobile_number, mask_value

logger = logging.getLogger(__name__)


class DeliveryError(Exception):
    """A message was refused; `reason` is short and holds nothing the server said."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def error_reason(exc: BaseException) -> str:
    """What last_error keeps of a failure."""
    if isinstance(exc, DeliveryError):
        return exc.reason[:200]
    return type(exc).__name__[:200]


class SmsBackend(Protocol):
    def send(self, *, to: str, text: str) -> None:
        """Send `text` to the phone number `to`, or raise."""


class ConsoleSmsBackend:
    """Development: prints each message with the number masked."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def send(self, *, to: str, text: str) -> None:
        self.stream.write(f"SMS to {mask_mobile_number(to)}: {text}\n")
        self.stream.flush()


class ConsoleEmailBackend(console.EmailBackend):
    """Development: prints each e-mail with the address masked (Django's console backend
    prints the whole message, the recipient's address with it)."""

    def write_message(self, message) -> None:
        to = ", ".join(mask_value("email", address) for address in message.to)
        self.stream.write(f"E-mail to {to}: {message.subject}\n{message.body}\n{'-' * 79}\n")


class HttpSmsBackend:
    """A generic SMS gateway: POST {"to", "text"} as JSON to SIMREG_SMS_GATEWAY_URL, with the
    bearer token SIMREG_SMS_GATEWAY_TOKEN when set. Any answer but 2xx is a failure."""

    def __init__(self, url: str = "", token: str = "", timeout: float | None = None) -> None:
        self.url = url or settings.SMS_GATEWAY_URL
        self.token = token or settings.SMS_GATEWAY_TOKEN
        self.timeout = timeout if timeout is not None else settings.SMS_GATEWAY_TIMEOUT
        if not self.url.startswith(("http://", "https://")):
            raise DeliveryError("SmsGatewayNotConfigured")

    def send(self, *, to: str, text: str) -> None:
        body = json.dumps({"to": to, "text": text}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                status = response.status
        except urllib.error.HTTPError as exc:
            exc.close()
            raise DeliveryError(f"HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            raise DeliveryError(
                type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
            ) from None
        if not 200 <= status < 300:
            raise DeliveryError(f"HTTP {status}")


def sms_backend() -> SmsBackend:
    """The SMS backend the settings choose."""
    return import_string(settings.SMS_BACKEND)()


def email_send(*, to: str, subject: str, text: str) -> None:
    """One e-mail through Django's e-mail backend (EMAIL_BACKEND)."""
    EmailMessage(subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[to]).send(
        fail_silently=False
    )
