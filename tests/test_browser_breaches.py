"""A compliance admin records a suspected breach from the home page, opens it, and marks the
regulator notified; the Philippine profile flags the notice as overdue until then."""

from __future__ import annotations

import datetime
import re

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations.models import AuditEvent, BreachRecord
from tests.browser import ARTIFACTS
from tests.factories import make_user, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LOCAL = "%Y-%m-%dT%H:%M"


def test_a_compliance_admin_records_opens_and_updates_a_breach(page, live_server, settings):
    settings.SIMREG_POLICY = "ph"
    compliance = make_user(roles.COMPLIANCE_ADMIN, username="compliance")
    device = TOTPDevice.objects.create(user=compliance, name="authenticator", confirmed=True)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "compliance")
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/second-factor/"))
    page.fill("#id_otp_token", totp_code(device))
    page.click("#button-verify")
    page.wait_for_url(f"{live_server.url}/")

    page.click("#link-breaches")
    page.wait_for_url(re.compile(r"/compliance/breaches/$"))
    page.click("#link-breach-new")
    found = timezone.localtime(timezone.now() - datetime.timedelta(hours=80))
    page.fill("#id_found_at", found.strftime(LOCAL))
    page.fill("#id_systems_affected", "Counter tablet, store MK01")
    page.fill("#id_records_affected", "40")
    page.fill("#id_occurred_at", (found + datetime.timedelta(hours=1)).strftime(LOCAL))
    page.fill("#id_description", "Printout naming 陳𠮷 left on the counter")
    page.click("#breach-form button[type=submit]")
    # Happened after it was found: the message beside the field, the rest kept.
    assert page.locator("#id_occurred_at.is-invalid").count() == 1
    assert page.input_value("#id_description") == "Printout naming 陳𠮷 left on the counter"
    page.screenshot(path=ARTIFACTS / "breach-new-error.png", full_page=True)
    page.fill("#id_occurred_at", "")
    page.click("#breach-form button[type=submit]")
    page.wait_for_url(re.compile(r"/compliance/breaches/\d+/$"))
    assert page.locator('[data-notice="overdue"]').count() == 1
    assert "陳𠮷" in page.locator("#breach-description").inner_text()
    page.screenshot(path=ARTIFACTS / "breach-detail-overdue.png", full_page=True)

    page.click("#link-breach-edit")
    page.select_option("#id_authority", "npc_ph")
    notified = timezone.localtime(timezone.now() - datetime.timedelta(hours=1))
    page.fill("#id_notified_at", notified.strftime(LOCAL))
    page.screenshot(path=ARTIFACTS / "breach-edit.png", full_page=True)
    page.click("#breach-form button[type=submit]")
    page.wait_for_url(re.compile(r"/compliance/breaches/\d+/$"))
    assert page.locator('[data-notice="late"]').count() == 1

    page.goto(f"{live_server.url}/compliance/breaches/")
    assert page.locator("#breaches tbody tr").count() == 1
    page.screenshot(path=ARTIFACTS / "breach-list.png", full_page=True)

    breach = BreachRecord.objects.get()
    assert breach.authority == "npc_ph"
    actions = list(
        AuditEvent.objects.filter(details__breach=breach.pk).values_list("action", flat=True)
    )
    assert actions == ["breach_recorded", "viewed", "viewed", "breach_updated", "viewed"]
