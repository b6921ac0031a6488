"""A supervisor finds the customer messages a gateway outage kept from being delivered, from the
review queue, and has them sent again once the gateway is back."""

from __future__ import annotations

import re

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles, services
from registrations.models import Notification
from registrations.notifications import notifications_deliver
from tests.browser import ARTIFACTS
from tests.factories import CUSTOMER, make_registration, make_store, make_user, totp_code
from tests.test_notifications_delivery import TOKEN, Gateway, Mailbox

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def servers(settings):
    mailbox, gateway = Mailbox(), Gateway()
    mailbox.controller.start()
    gateway.thread.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", mailbox.controller.port
    settings.SMS_BACKEND = "registrations.notifications.backends.HttpSmsBackend"
    settings.SMS_GATEWAY_URL, settings.SMS_GATEWAY_TOKEN = gateway.url, TOKEN
    yield mailbox, gateway
    mailbox.controller.stop()
    gateway.server.shutdown()
    gateway.server.server_close()


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_supervisor_sees_undelivered_messages_and_retries_them(
    page, live_server, servers, settings, language
):
    mailbox, gateway = servers
    settings.NOTIFY_MAX_ATTEMPTS = 1
    store = make_store(code="MK01", name="Mong Kok", name_zh="旺角")
    staff = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    decider = make_user(roles.SUPERVISOR, supervises=[store], username="decider")
    device = TOTPDevice.objects.create(user=supervisor, name="authenticator", confirmed=True)
    pending = make_registration(store=store, created_by=staff, status="pending")
    services.registration_decide(registration=pending, reviewer=decider, outcome="approved")
    gateway.status = 500
    notifications_deliver()
    assert Notification.objects.get(channel="sms").state == "failed"

    page.goto(f"{live_server.url}/login/")
    if language != "en":
        with page.expect_navigation():
            page.select_option("#language-select", language)
    page.fill("#id_username", "super")
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/second-factor/"))
    page.fill("#id_otp_token", totp_code(device))
    page.click("#button-verify")
    page.goto(f"{live_server.url}/review/")
    assert page.locator("#failed-notifications-count").inner_text() == "1"
    page.click("#notifications-link")
    page.wait_for_url(re.compile(r"/review/notifications/$"))
    row = page.locator("#notifications tbody tr")
    assert row.count() == 1
    text = row.inner_text()
    assert pending.reference in text and "HTTP 500" in text and "•••• 4567" in text
    assert CUSTOMER["contact_number"] not in page.content()
    page.screenshot(path=ARTIFACTS / f"review-notifications-{language}.png", full_page=True)

    gateway.status = 200
    row.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/review/notifications/$"))
    page.screenshot(path=ARTIFACTS / f"review-notifications-retried-{language}.png", full_page=True)
    assert notifications_deliver() == 1
    assert [sms["to"] for sms in gateway.received] == [CUSTOMER["contact_number"]]
    # The e-mail had gone out at the first attempt.
    assert len(mailbox.messages) == 1
    page.reload()
    assert page.locator("#notifications tbody tr").count() == 1  # the "all delivered" line
    assert page.locator("#notifications tbody tr td a").count() == 0
