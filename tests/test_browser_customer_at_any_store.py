"""A Mong Kok customer served at Causeway Bay, in a real Chromium: found by document, opened for
service, an update of information, then a lost SIM and its replacement; a Mong Kok supervisor
decides both, and the old SIM can be registered again.

Screenshots are written to test-artifacts/ for a person to look at.
"""

import datetime
import re

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles, selectors
from registrations.models import AuditEvent, PendingChange, Registration
from tests.browser import ARTIFACTS, sign_in
from tests.factories import (
    VALID_ICCID,
    VALID_ICCID_20,
    make_approved,
    make_person,
    make_store,
    make_user,
    totp_code,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = "customer-at-any-store"


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{SHOTS}-{name}.png"), full_page=True)


def sign_in_supervisor(page, live_server, device) -> None:
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "mk-super")
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/second-factor/"))
    page.fill("#id_otp_token", totp_code(device))
    page.click("#button-verify")
    page.wait_for_url(re.compile(r"/(review/)?$"))


def approve_change(page, live_server, registration, kind_label: str) -> None:
    page.goto(f"{live_server.url}/review/")
    assert registration.reference in page.inner_text("main")
    page.goto(f"{live_server.url}/review/{registration.reference}/")
    change = page.locator(".change").filter(has_text="Pending review").first
    assert kind_label in change.inner_text()
    change.locator("input[name=approve][value=yes]").check()
    with page.expect_navigation():
        change.locator("button.btn-primary[type=submit]").click()


def test_a_mong_kok_customer_is_served_at_causeway_bay(browser, live_server, tmp_path, settings):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    ARTIFACTS.mkdir(exist_ok=True)
    mong_kok = make_store(code="MK01", name="Mong Kok", name_zh="旺角")
    causeway_bay = make_store(code="CWB1", name="Causeway Bay", name_zh="銅鑼灣")
    mk_staff = make_user(roles.COUNTER_STAFF, stores=[mong_kok], username="mk-counter")
    make_user(roles.COUNTER_STAFF, stores=[causeway_bay], username="cwb-counter")
    mk_super = make_user(roles.SUPERVISOR, supervises=[mong_kok], username="mk-super")
    device = TOTPDevice.objects.create(user=mk_super, name="authenticator", confirmed=True)
    other_super = make_user(roles.SUPERVISOR, supervises=[mong_kok])
    customer = make_person(name_en="CHAN Tai Man", name_zh="陳𠮷", document_number="A1234563")
    registration = make_approved(
        store=mong_kok,
        created_by=mk_staff,
        reviewer=other_super,
        customer=customer,
        msisdn="+85261234567",
        iccid=VALID_ICCID,
    )

    clerk_context = browser.new_context(viewport={"width": 1200, "height": 900})
    super_context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        clerk = clerk_context.new_page()
        supervisor = super_context.new_page()
        sign_in(clerk, live_server, "cwb-counter")

        # Found by document at Causeway Bay.
        clerk.goto(f"{live_server.url}/counter/find/")
        clerk.check("input[name=by][value=document]")
        clerk.select_option("#id_document_type", "hkid")
        clerk.fill("#id_document_number", "a123456(3)")
        with clerk.expect_navigation():
            clerk.click("#button-find")
        assert clerk.url == f"{live_server.url}/counter/find/", "the number is never in a URL"
        row = clerk.locator(".find-result")
        assert row.count() == 1
        text = row.inner_text()
        assert registration.reference in text and "MK01" in text and "Approved" in text
        assert "•••• 4567" in text and "61234567" not in text
        shot(clerk, "1-find")

        # Opened for service: the purpose asked once.
        row.locator("select[name=purpose]").select_option("update")
        with clerk.expect_navigation():
            row.locator("button[type=submit]").click()
        assert clerk.url.endswith(f"/counter/{registration.reference}/service/?purpose=update")
        summary = clerk.inner_text("#service-summary")
        assert "C••• T•• M••" in summary and "A123***(*)" in summary
        assert "CHAN" not in summary and "陳𠮷" not in summary
        assert "supervisors of MK01 Mong Kok" in clerk.inner_text("#store-notice")
        shot(clerk, "2-service")

        # An update of information.
        with clerk.expect_navigation():
            clerk.click("#link-update")
        clerk.fill("#id_new_address", "Flat 3, 5 Hennessy Road, Causeway Bay")
        with clerk.expect_navigation():
            clerk.click("#button-request-update")
        assert "Supervisors of MK01 Mong Kok" in clerk.inner_text("main")
        assert "Update of information" in clerk.inner_text("#pending-change")
        shot(clerk, "3-update-recorded")

        # A Mong Kok supervisor approves it.
        sign_in_supervisor(supervisor, live_server, device)
        approve_change(supervisor, live_server, registration, "Update of information")
        update = PendingChange.objects.get(kind="update")
        assert update.status == "approved" and update.requested_at_store == causeway_bay

        # The SIM is lost: reported, then a replacement with a new ICCID.
        clerk.goto(f"{live_server.url}/counter/{registration.reference}/service/")
        clerk.check("input[name=purpose][value=sim_loss]")
        with clerk.expect_navigation():
            clerk.click("#button-open")
        with clerk.expect_navigation():
            clerk.click("#link-loss")
        # A wrong date of birth first: nothing changes, and the clerk is told plainly.
        clerk.select_option("#id_document_type", "hkid")
        clerk.fill("#id_document_number", "A123456(3)")
        clerk.fill("#id_name_en", "tai man chan")
        clerk.fill("#id_name_zh", "陳𠮷")
        clerk.fill("#id_date_of_birth", "1990-05-18")
        clerk.check("input[name=sim_loss][value=lost]")
        with clerk.expect_navigation():
            clerk.click("#button-report-loss")
        assert "do not match this registration" in clerk.inner_text("#form-errors")
        registration.refresh_from_db()
        assert registration.status == "approved"
        shot(clerk, "4-identity-mismatch")
        clerk.fill("#id_date_of_birth", "1990-05-17")
        with clerk.expect_navigation():
            clerk.click("#button-report-loss")
        registration.refresh_from_db()
        assert registration.status == "suspended"
        assert "Suspended" in clerk.inner_text("#status")
        with clerk.expect_navigation():
            clerk.click("#link-replace")
        clerk.select_option("#id_document_type", "hkid")
        clerk.fill("#id_document_number", "A123456(3)")
        clerk.fill("#id_name_en", "CHAN Tai Man")
        clerk.fill("#id_date_of_birth", "1990-05-17")
        clerk.check("input[name=new_sim_kind][value=physical]")
        clerk.fill("#id_new_iccid", VALID_ICCID_20)
        shot(clerk, "5-replace")
        with clerk.expect_navigation():
            clerk.click("#button-request-replacement")
        assert "SIM replacement" in clerk.inner_text("#pending-change")
        shot(clerk, "6-replacement-recorded")

        # The Mong Kok supervisor sees old and new SIM, and approves.
        supervisor.goto(f"{live_server.url}/review/{registration.reference}/")
        comparison = supervisor.locator(".replacement-comparison").first.inner_text()
        assert VALID_ICCID in comparison and VALID_ICCID_20 in comparison
        shot(supervisor, "7-review-replacement")
        approve_change(supervisor, live_server, registration, "SIM replacement")
        shot(supervisor, "8-review-queue-after")

        registration.refresh_from_db()
        assert registration.status == Registration.Status.APPROVED
        assert registration.iccid == VALID_ICCID_20
        assert registration.msisdn == "+85261234567"
        registration.customer.refresh_from_db()
        assert registration.customer.address == "Flat 3, 5 Hennessy Road, Causeway Bay"
        # The old ICCID is free: a new registration may hold it.
        assert selectors.registration_active_clashes(iccid=VALID_ICCID) == set()
        again = make_approved(
            store=mong_kok, created_by=mk_staff, reviewer=other_super, iccid=VALID_ICCID
        )
        assert again.iccid == VALID_ICCID

        clerk.goto(f"{live_server.url}/counter/{registration.reference}/service/?purpose=enquiry")
        assert "Approved" in clerk.inner_text("#status")
        assert VALID_ICCID_20 in clerk.inner_text("#service-summary")
        shot(clerk, "9-service-after")

        # The audit holds every step, and no identity value.
        events = AuditEvent.objects.filter(registration_reference=registration.reference)
        actions = set(events.values_list("action", flat=True))
        assert {"viewed", "suspended", "replacement_requested", "change_approved"} <= actions
        text = " ".join(repr(e.details) + e.reason for e in AuditEvent.objects.all())
        for value in ("CHAN", "Tai Man", "陳𠮷", "A123456", "Hennessy", "1990-05-1"):
            assert value not in text, value
        assert datetime.date(1990, 5, 17) == registration.customer.date_of_birth
    finally:
        clerk_context.close()
        super_context.close()
