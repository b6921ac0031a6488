"""The issue's "done when" for the subscriber's own report, in a real Chromium: a clerk at
another store finds the customer, opens the report from the service page, checks the identity
and gets a printable report of several registrations and the supervisor's reveals, with staff
named by role and store. A screenshot and the printed PDF go to test-artifacts/.
"""

import re

import pytest

from registrations import roles, services
from registrations.models import AuditEvent
from tests.browser import ARTIFACTS, sign_in
from tests.factories import make_approved, make_document_copy, make_store, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_clerk_at_another_store_prints_the_customers_own_report(
    page, live_server, tmp_path, settings
):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    ARTIFACTS.mkdir(exist_ok=True)
    mk = make_store(code="MK01", name="Mong Kok", name_zh="旺角")
    cwb = make_store(code="CWB1", name="Causeway Bay", name_zh="銅鑼灣")
    supervisor = make_user(roles.SUPERVISOR, supervises=[mk, cwb], username="sup.wong.7731")
    mk_clerk = make_user(roles.COUNTER_STAFF, stores=[mk], username="clerk.lee.5520")
    make_user(roles.COUNTER_STAFF, stores=[cwb], username="clerk.ho.9912")
    first = make_approved(store=mk, created_by=mk_clerk, reviewer=supervisor)
    second = make_approved(store=mk, created_by=mk_clerk, reviewer=supervisor)
    services.identity_reveal(
        registration=first, user=supervisor, field="document_number", reason="suspected_fraud"
    )
    services.identity_reveal(
        registration=second, user=supervisor, field="address", reason="correct_error"
    )
    services.document_copy_read(
        document=make_document_copy(second), actor=supervisor, reason="customer_request"
    )

    sign_in(page, live_server, "clerk.ho.9912")
    page.goto(f"{live_server.url}/counter/find/")
    page.check("input[name=by][value=document]")
    page.select_option("#id_document_type", "hkid")
    page.fill("#id_document_number", "A123456(3)")
    page.click("#button-find")
    row = page.locator(".find-result", has_text=first.reference)
    row.locator("select[name=purpose]").select_option("subject_report")
    row.locator("button[type=submit]").click()
    page.wait_for_url(re.compile(r"/service/\?purpose=subject_report$"))
    page.click("#link-subject-report")
    page.wait_for_url(re.compile(r"/subject-report/(\?purpose=subject_report)?$"))
    page.select_option("#id_document_type", "hkid")
    page.fill("#id_document_number", "A123456(3)")
    page.fill("#id_name_en", "Chan Tai Man")
    page.fill("#id_date_of_birth", "1990-05-17")
    page.click("#button-subject-report")
    page.wait_for_selector("#subject-report")

    assert f"/counter/{first.reference}/subject-report/" in page.url
    for value in ("A123456", "Chan", "1990"):
        assert value not in page.url, "the identity values were posted"
    report = page.inner_text("#subject-report")
    assert first.reference in report and second.reference in report
    assert "A123456(3)" in report and "CHAN Tai Man" in report
    assert "Supervisor, MK01" in report
    assert "Counter staff, CWB1" in report and "Counter staff, MK01" not in report, (
        "the clerk's views of an MK01 record are named by the clerk's store"
    )
    assert "Investigate suspected fraud" in report and "Correct an error in the record" in report
    assert "The customer asked about the copy" in report
    for name in ("sup.wong.7731", "clerk.lee.5520", "clerk.ho.9912"):
        assert name not in report
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SUBJECT_REPORT).count() == 2
    page.screenshot(path=str(ARTIFACTS / "subject-report.png"), full_page=True)
    page.emulate_media(media="print")
    page.screenshot(path=str(ARTIFACTS / "subject-report-print.png"), full_page=True)
    page.pdf(path=str(ARTIFACTS / "subject-report.pdf"), format="A4", print_background=True)
    assert (ARTIFACTS / "subject-report.pdf").read_bytes().startswith(b"%PDF")
