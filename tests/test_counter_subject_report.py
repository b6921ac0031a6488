"""The subscriber's own report: at the counter of any store, after the customer's identity is
checked, every registration of their document across the stores and every access to them, with
staff named by role and store; audited per registration, never stored, no value in a URL."""

import json

import pytest
from django.conf import settings
from django.utils import timezone

from registrations import roles, selectors, services
from registrations.models import AuditEvent
from tests.factories import (
    CUSTOMER,
    make_approved,
    make_complete_draft,
    make_decided,
    make_document_copy,
    make_pending_change,
    make_person,
    make_user,
    pass_second_factor,
    url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

# User names that appear nowhere else in a page, so that finding one means a name leaked.
SUPERVISOR_NAME = "wong.sup.7731"
MK_CLERK_NAME = "lee.clerk.5520"
CWB_CLERK_NAME = "ho.clerk.9912"
NEW_ADDRESS = "Room 3, 𠝹 Building, 1 Hennessy Road"
IDENTITY = {
    "document_type": "hkid",
    "document_number": "a123456(3)",
    "name_en": "chan  tai man",
    "name_zh": CUSTOMER["name_zh"],
    "date_of_birth": "1990-05-17",
}
VALUES = (
    CUSTOMER["name_en"],
    CUSTOMER["name_zh"],
    "A1234563",
    "A123456",
    CUSTOMER["address"],
    CUSTOMER["contact_number"],
    CUSTOMER["email"],
    "1990-05-17",
    NEW_ADDRESS,
)


@pytest.fixture
def world(store, other_store):
    """One customer with registrations at MK01 and CWB1, one terminated, one draft, a change
    asked for; a supervisor revealed the document number on one and viewed a copy of another."""
    supervisor = make_user(
        roles.SUPERVISOR, supervises=[store, other_store], username=SUPERVISOR_NAME
    )
    mk_clerk = make_user(roles.COUNTER_STAFF, stores=[store], username=MK_CLERK_NAME)
    cwb_clerk = make_user(roles.COUNTER_STAFF, stores=[other_store], username=CWB_CLERK_NAME)
    mk = make_approved(store=store, created_by=mk_clerk, reviewer=supervisor)
    cwb = make_approved(store=other_store, created_by=cwb_clerk, reviewer=supervisor)
    ended = make_decided(
        "terminated",
        store=other_store,
        created_by=cwb_clerk,
        reviewer=supervisor,
        terminated_at=timezone.now(),
    )
    draft = make_complete_draft(store=store, created_by=mk_clerk)
    stranger = make_approved(
        store=store,
        created_by=mk_clerk,
        reviewer=supervisor,
        customer=make_person(document_number="Z683365A", name_en="LAU Siu Ming"),
    )
    make_pending_change(mk, requested_by=cwb_clerk, new={"address": NEW_ADDRESS})
    services.identity_reveal(
        registration=mk, user=supervisor, field="document_number", reason="confirm_with_customer"
    )
    copy = make_document_copy(cwb)
    services.document_copy_read(document=copy, actor=supervisor, reason="check_against_original")
    return {
        "mk": mk,
        "cwb": cwb,
        "ended": ended,
        "draft": draft,
        "stranger": stranger,
        "cwb_clerk": cwb_clerk,
        "supervisor": supervisor,
    }


@pytest.fixture
def clerk_client(client, world):
    client.force_login(world["cwb_clerk"])
    return client


def report_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.SUBJECT_REPORT))


def test_the_report_lists_every_registration_and_every_access_by_role_and_store(
    clerk_client, world
):
    response = clerk_client.post(url("counter-subject-report", world["cwb"]), IDENTITY)
    assert response.status_code == 200
    page = response.content.decode()
    for key in ("mk", "cwb", "ended"):
        assert f'id="report-{world[key].reference}"' in page
    assert world["draft"].reference not in page, "drafts are not part of the report"
    assert world["stranger"].reference not in page, "only the customer's own document"
    assert "3 registrations of your document" in page
    # The customer's own data in full: the report is printed for them.
    assert "A123456(3)" in page and CUSTOMER["name_zh"] in page
    assert CUSTOMER["address"] in page and CUSTOMER["email"] in page
    assert NEW_ADDRESS in page, "the change asked for, with its new value"
    assert "Update of information" in page and "Pending review" in page
    # The supervisor's accesses, named by role and store, with their reasons.
    assert "Identity field revealed: Document number" in page
    assert "Supervisor, MK01" in page
    assert "Confirm with the customer present" in page
    assert "Document copy viewed: Identity document" in page
    assert "Supervisor, CWB1" in page
    assert "Check the copy against the original document" in page
    assert "Counter staff, CWB1" in page, "the change asked for at CWB1"
    report = page.split('id="subject-report"')[1].split("</article>")[0]
    for name in (SUPERVISOR_NAME, MK_CLERK_NAME, CWB_CLERK_NAME):
        assert name not in report, "no member of staff is named"
    assert "Subscriber&#x27;s own report produced" in page, "the report's own events listed"


def test_a_view_from_another_stores_counter_is_named_by_that_store(clerk_client, world):
    """The form page's view of an MK01 record by a CWB1 clerk is recorded on MK01's record;
    the report names the counter where it happened."""
    report_url = url("counter-subject-report", world["mk"])
    clerk_client.get(report_url)
    page = clerk_client.post(report_url, IDENTITY).content.decode()
    section = page.split(f'id="report-{world["mk"].reference}"')[1].split("</section>")[0]
    assert "Record viewed" in section
    assert "Counter staff, CWB1" in section and "Counter staff, MK01" not in section


def test_the_report_is_never_stored_and_no_value_is_in_a_url_or_the_session(clerk_client, world):
    report_url = url("counter-subject-report", world["cwb"])
    response = clerk_client.post(report_url, IDENTITY)
    assert "no-store" in response["Cache-Control"]
    assert response.request["PATH_INFO"] == report_url and not response.request["QUERY_STRING"]
    for value in VALUES:
        assert value.lower() not in report_url.lower()
    session = json.dumps(dict(clerk_client.session.items()), ensure_ascii=False)
    for value in VALUES:
        assert value not in session
    # The form posts back to its own address: the values go in the body.
    form_page = clerk_client.get(report_url).content.decode()
    assert 'method="post"' in form_page and 'id="subject-report-form"' in form_page


def test_producing_the_report_is_audited_on_each_registration_with_references_only(
    clerk_client, world
):
    clerk_client.post(url("counter-subject-report", world["cwb"]), IDENTITY)
    events = report_events()
    references = sorted(world[key].reference for key in ("mk", "cwb", "ended"))
    assert sorted(event.registration_reference for event in events) == references
    for event in events:
        assert event.actor == world["cwb_clerk"]
        assert event.details["at_store"] == "CWB1"
        assert event.details["checked_on"] == world["cwb"].reference
        assert sorted(event.details["references"]) == references
        assert event.fields == [] and event.reason == ""
        written = json.dumps(
            [event.details, event.reason, event.fields, event.user_agent], ensure_ascii=False
        )
        for value in VALUES:
            assert value not in written


def test_a_wrong_identity_shows_nothing_and_is_audited(clerk_client, world):
    wrong = {**IDENTITY, "date_of_birth": "1990-05-18"}
    response = clerk_client.post(url("counter-subject-report", world["cwb"]), wrong)
    assert response.status_code == 200
    page = response.content.decode()
    assert "do not match this registration" in page
    assert "date of birth" not in page.split('id="form-errors"')[1].split("</div>")[0].lower()
    assert 'id="subject-report"' not in page
    assert world["mk"].reference not in page
    assert CUSTOMER["address"] not in page and CUSTOMER["name_en"] not in page
    assert not report_events()
    [failed] = AuditEvent.objects.filter(action=AuditEvent.Action.IDENTITY_CHECK_FAILED)
    assert failed.registration_reference == world["cwb"].reference
    assert failed.details == {"page": "subject_report", "at_store": "CWB1"}


def test_the_report_is_in_chinese_for_a_chinese_page(clerk_client, world):
    clerk_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hant"
    page = clerk_client.post(url("counter-subject-report", world["cwb"]), IDENTITY).content.decode()
    assert '<html lang="zh-hant">' in page
    assert "已批准" in page, "statuses in the page's language"
    assert CUSTOMER["name_zh"] in page, "a name outside the BMP printed whole"


def test_a_long_history_is_bounded(clerk_client, world, monkeypatch):
    # The record at MK01 has two events: the reveal and the report's own.
    monkeypatch.setattr(selectors, "SUBJECT_REPORT_EVENTS", 1)
    page = clerk_client.post(url("counter-subject-report", world["cwb"]), IDENTITY).content.decode()
    assert "Only the newest 1 accesses are shown" in page
    section = page.split(f'id="report-{world["mk"].reference}"')[1].split("</section>")[0]
    assert section.count('class="access"') == 1
    assert "Subscriber&#x27;s own report produced" in section, "newest first"


def test_the_service_page_and_find_lead_to_the_report(clerk_client, world):
    page = clerk_client.get(
        url("counter-service", world["ended"]) + "?purpose=subject_report"
    ).content.decode()
    assert url("counter-subject-report", world["ended"]) in page, "open in any status"
    found = clerk_client.post(
        "/counter/find/",
        {"by": "document", "document_type": "hkid", "document_number": "A123456(3)"},
    ).content.decode()
    assert 'value="subject_report"' in found
    assert "The customer&#x27;s own report of their data" in found


@pytest.mark.parametrize("role", ["supervisor", "compliance"])
def test_only_counter_staff_produce_the_report(client, world, compliance, role):
    user = world["supervisor"] if role == "supervisor" else compliance
    client.force_login(user)
    pass_second_factor(client, user)
    response = client.post(url("counter-subject-report", world["cwb"]), IDENTITY)
    assert response.status_code == 403
    assert not report_events()
