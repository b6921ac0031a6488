"""Delivering the outbox for real: e-mail to an SMTP server on loopback (aiosmtpd), SMS to a
generic HTTP gateway on loopback, both run by the job worker; outages retried with back-off,
messages given up on shown to supervisors, two workers at once, and no identity value in
anything a server received or the app printed or logged."""

from __future__ import annotations

import datetime
import email
import email.policy
import json
import logging
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from django.db import connections
from django.urls import reverse
from django.utils import timezone

from registrations import services
from registrations.models import AuditEvent, Notification, Registration
from registrations.notifications import notifications_deliver
from registrations.tasks import notifications_deliver_due
from tests.factories import CUSTOMER, make_person, make_registration
from tests.jobs import run_jobs, run_worker_loop
from tests.storage import closed_port

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

Event = Notification.Event
TOKEN = "gateway-test-token"
REFERENCE = re.compile(r"[A-Z2-9]{5}-[A-Z2-9]{5}")

# What no message, console line or log line may hold (the customer's, from tests.factories).
IDENTITY_VALUES = [
    CUSTOMER["name_en"],
    "CHAN",
    "Tai Man",
    CUSTOMER["name_zh"],
    "陳",
    "𠮷",
    CUSTOMER["document_number"],
    "A123456",
    "1990-05-17",
    "17/05/1990",
    "1990",
    "Nathan Road",
    "tai.man.chan",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """An SMTP server on loopback that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse = False
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "451 Mailbox of " + ",".join(envelope.rcpt_tos) + " is busy"
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 OK"

    def texts(self) -> list[str]:
        """Each message's headers and decoded body, but the To header (the address it is for)."""
        texts = []
        for _recipients, raw in self.messages:
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            headers = "\n".join(f"{k}: {v}" for k, v in parsed.items() if k.lower() != "to")
            texts.append(headers + "\n" + parsed.get_content())
        return texts

    def addressed_to(self) -> list[str]:
        return [
            email.message_from_bytes(raw, policy=email.policy.default)["To"]
            for _recipients, raw in self.messages
        ]


class Gateway:
    """A generic SMS gateway on loopback: takes {"to", "text"} with the bearer token; answers
    `status` (a 500 repeating the recipient, while `status` says so)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.status = 200
        self.delay = 0.0
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    self.send_response(401)
                    self.end_headers()
                    return
                time.sleep(gateway.delay)
                if gateway.status != 200:
                    self.send_response(gateway.status)
                    self.end_headers()
                    self.wfile.write(f"cannot reach {body['to']}".encode())
                    return
                with gateway.lock:
                    gateway.received.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"queued": true}')

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    box.controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = box.controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.DEFAULT_FROM_EMAIL = "notices@simreg.example"
    yield box
    box.controller.stop()


@pytest.fixture
def gateway(settings):
    gw = Gateway()
    gw.thread.start()
    settings.SMS_BACKEND = "registrations.notifications.backends.HttpSmsBackend"
    settings.SMS_GATEWAY_URL = gw.url
    settings.SMS_GATEWAY_TOKEN = TOKEN
    settings.SMS_GATEWAY_TIMEOUT = 2
    yield gw
    gw.server.shutdown()
    gw.server.server_close()


def decide(registration: Registration, reviewer, outcome: str = "approved", reason: str = ""):
    services.registration_decide(
        registration=registration,
        reviewer=reviewer,
        outcome=outcome,
        reason_code=reason,
        comment="Spoke with CHAN Tai Man about Nathan Road" if reason else "",
    )


def time_passes() -> None:
    """Every waiting message's back-off is over."""
    Notification.objects.filter(state=Notification.State.QUEUED).update(
        next_attempt_at=timezone.now() - datetime.timedelta(seconds=1)
    )


def leaks(texts: list[str]) -> list[str]:
    return [value for value in IDENTITY_VALUES for text in texts if value in text]


# Delivered ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "has been approved"), ("zh-hant", "分店")],
)
def test_the_worker_delivers_by_smtp_and_the_gateway_in_the_customer_s_language(
    mailbox, gateway, store, staff, supervisor, language, expected
):
    pending = make_registration(
        store=store, created_by=staff, status="pending", notice_language=language
    )
    decide(pending, supervisor)
    run_worker_loop()

    assert [to for to, _raw in mailbox.messages] == [[CUSTOMER["email"]]]
    [mail] = mailbox.texts()
    assert pending.reference in mail and expected in mail
    assert "From: notices@simreg.example" in mail
    assert [sms["to"] for sms in gateway.received] == [CUSTOMER["contact_number"]]
    assert pending.reference in gateway.received[0]["text"]
    assert expected in gateway.received[0]["text"]
    rows = Notification.objects.filter(registration=pending)
    assert {(n.state, n.attempts) for n in rows} == {("sent", 1)}
    assert all(n.sent_at is not None and n.last_error == "" for n in rows)


def test_each_message_sent_is_an_audit_event_naming_no_recipient(
    mailbox, gateway, store, staff, supervisor
):
    pending = make_registration(store=store, created_by=staff, status="pending")
    decide(pending, supervisor)
    notifications_deliver_due.enqueue()
    run_jobs()
    events = AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION_SENT).order_by("id")
    rows = {n.pk: n for n in Notification.objects.filter(registration=pending)}
    assert [(e.details["channel"], e.details["event"]) for e in events] == [
        ("sms", "approved"),
        ("email", "approved"),
    ]
    assert {e.details["notification"] for e in events} == set(rows)
    for event in events:
        assert event.registration_reference == pending.reference
        assert event.actor is None and event.actor_username == "job-worker"
        assert CUSTOMER["contact_number"] not in json.dumps(event.details)
        assert CUSTOMER["email"] not in json.dumps(event.details)
    # Sent once: a second sweep sends nothing more.
    notifications_deliver_due.enqueue()
    run_jobs()
    assert len(gateway.received) == 1 and len(mailbox.messages) == 1


# Outages ------------------------------------------------------------------------------------------


def test_a_gateway_outage_is_retried_with_back_off_and_delivered_once_it_is_back(
    mailbox, gateway, store, staff, supervisor
):
    pending = make_registration(store=store, created_by=staff, status="pending")
    decide(pending, supervisor)
    gateway.status = 500
    before = timezone.now()
    assert notifications_deliver() == 1  # the e-mail
    sms = Notification.objects.get(registration=pending, channel="sms")
    assert (sms.state, sms.attempts, sms.last_error) == ("queued", 1, "HTTP 500")
    assert before + datetime.timedelta(minutes=1) <= sms.next_attempt_at
    assert sms.next_attempt_at <= timezone.now() + datetime.timedelta(minutes=1)
    # Not due yet: the next sweep leaves it alone.
    assert notifications_deliver() == 0
    assert Notification.objects.get(pk=sms.pk).attempts == 1

    time_passes()
    before = timezone.now()
    notifications_deliver()
    sms.refresh_from_db()
    assert (sms.attempts, sms.last_error) == (2, "HTTP 500")
    assert sms.next_attempt_at >= before + datetime.timedelta(minutes=2)

    # The gateway is down altogether: nobody answers on its port.
    gateway.status = 200
    gateway_url = gateway.url
    from django.conf import settings

    settings.SMS_GATEWAY_URL = f"http://127.0.0.1:{closed_port()}/send"
    time_passes()
    before = timezone.now()
    notifications_deliver()
    sms.refresh_from_db()
    assert (sms.attempts, sms.last_error) == (3, "ConnectionRefusedError")
    assert sms.next_attempt_at >= before + datetime.timedelta(minutes=4)
    assert "9123" not in sms.last_error

    settings.SMS_GATEWAY_URL = gateway_url
    time_passes()
    assert notifications_deliver() == 1
    sms.refresh_from_db()
    assert (sms.state, sms.attempts, sms.last_error) == ("sent", 4, "")
    assert [m["to"] for m in gateway.received] == [CUSTOMER["contact_number"]]


def test_past_the_limit_a_message_is_given_up_shown_to_supervisors_and_the_change_stays(
    client, mailbox, gateway, settings, store, staff, supervisor
):
    settings.NOTIFY_MAX_ATTEMPTS = 3
    pending = make_registration(store=store, created_by=staff, status="pending")
    decide(pending, supervisor, "rejected", "suspected_fraud")
    gateway.status = 503
    mailbox.refuse = True
    for _round in range(3):
        notifications_deliver()
        time_passes()
    rows = Notification.objects.filter(registration=pending)
    assert {(n.channel, n.state, n.attempts) for n in rows} == {
        ("sms", "failed", 3),
        ("email", "failed", 3),
    }
    assert {n.last_error for n in rows} == {"HTTP 503", "SMTPDataError"}
    # The change the messages tell about is done regardless.
    pending.refresh_from_db()
    assert pending.status == "rejected"
    failed = AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION_FAILED)
    assert {(e.details["channel"], e.details["attempts"]) for e in failed} == {
        ("sms", 3),
        ("email", 3),
    }
    assert not [
        e for e in failed if "9123" in json.dumps(e.details) or "@" in json.dumps(e.details)
    ]
    # No more attempts once given up.
    notifications_deliver()
    assert {n.attempts for n in Notification.objects.filter(registration=pending)} == {3}

    client.force_login(supervisor)
    queue = client.get(reverse("review-queue"))
    assert queue.context["failed_notifications"] == 2
    page = client.get(reverse("review-notifications")).content.decode()
    assert pending.reference in page and "HTTP 503" in page and "SMTPDataError" in page
    assert CUSTOMER["email"] not in page and CUSTOMER["contact_number"] not in page

    # The gateway is mended; the supervisor retries the SMS, and it goes out.
    gateway.status = 200
    sms = rows.get(channel="sms")
    client.post(reverse("review-notifications-retry"), {"notification": sms.pk})
    assert notifications_deliver() == 1
    sms.refresh_from_db()
    assert sms.state == "sent"
    assert pending.reference in gateway.received[0]["text"]


# Two workers ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_message_once(gateway, store, staff, supervisor):
    gateway.delay = 0.02
    registrations = []
    for _ in range(6):
        registration = make_registration(
            store=store,
            created_by=staff,
            status="pending",
            customer=make_person(contact_number="", email=""),
        )
        registrations.append(registration)
    for registration in registrations:
        decide(registration, supervisor)
    assert Notification.objects.count() == 6  # an SMS to each mobile number
    barrier = threading.Barrier(2)
    sent: list[int] = []
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait()
            sent.append(notifications_deliver())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sum(sent) == 6
    received = sorted(m["to"] for m in gateway.received)
    assert received == sorted(r.msisdn for r in registrations)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION_SENT).count() == 6


# Nothing leaks ----------------------------------------------------------------------------------


def test_no_message_console_line_or_log_line_holds_an_identity_value(
    mailbox, gateway, settings, store, staff, supervisor, caplog, capsys
):
    caplog.set_level(logging.DEBUG)
    outcomes = [("approved", ""), ("rejected", "document_mismatch"), ("returned", "other")]
    for language in ("en", "zh-hant"):
        for outcome, reason in outcomes:
            pending = make_registration(
                store=store, created_by=staff, status="pending", notice_language=language
            )
            decide(pending, supervisor, outcome, reason)
    run_worker_loop()
    assert len(mailbox.messages) == 6 and len(gateway.received) == 6
    assert set(mailbox.addressed_to()) == {CUSTOMER["email"]}

    # The console backend, as in development.
    settings.SMS_BACKEND = "registrations.notifications.backends.ConsoleSmsBackend"
    settings.EMAIL_BACKEND = "registrations.notifications.backends.ConsoleEmailBackend"
    capsys.readouterr()
    pending = make_registration(store=store, created_by=staff, status="pending")
    decide(pending, supervisor)
    notifications_deliver()
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert pending.reference in printed
    assert "SMS to •••• 4567" in printed and "E-mail to t•••@example.com" in printed

    # The app's log: the test's own SMTP server logs its conversation (recipients included).
    logged = "\n".join(
        caplog.handler.format(record)
        for record in caplog.records
        if not record.name.startswith("mail.log")
    )
    assert "Notification" in logged
    texts = [*mailbox.texts(), *[m["text"] for m in gateway.received], printed, logged]
    assert leaks(texts) == []
    # The number and the address go only where they must: the envelope and the gateway's "to".
    assert not [
        t
        for t in [*[m["text"] for m in gateway.received], printed, logged]
        if CUSTOMER["contact_number"] in t or "91234567" in t
    ]
    assert not [t for t in [printed, logged] if CUSTOMER["email"] in t]
    # What a message does hold: a reference.
    assert all(REFERENCE.search(m["text"]) for m in gateway.received)


def test_a_late_message_gives_the_reason_of_its_own_decision(
    gateway, mailbox, store, staff, supervisor
):
    """Retried for hours, a "returned" message still says why it was returned, even when the
    record has since been decided again for another reason."""
    pending = make_registration(store=store, created_by=staff, status="pending")
    gateway.status = 503
    decide(pending, supervisor, "returned", "document_unreadable")
    notifications_deliver()
    # Later: corrected, resubmitted and rejected for another reason.
    Registration.objects.filter(pk=pending.pk).update(
        status="rejected", reason_code="suspected_fraud"
    )
    gateway.status = 200
    time_passes()
    notifications_deliver()
    [sms] = gateway.received
    assert "Reason: Document unreadable." in sms["text"]
    assert "fraud" not in sms["text"].lower()
