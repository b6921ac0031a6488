"""A registration of another store opened for service: the purpose asked once and audited, what
the service needs shown masked, and updates and terminations asked for at any store."""

import pytest
from django.core.exceptions import PermissionDenied

from registrations import roles, services
from registrations.models import AuditEvent, PendingChange
from tests.factories import (
    VALID_ICCID,
    make_approved,
    make_complete_draft,
    make_user,
    url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

IDENTITY_VALUES = ("CHAN Tai Man", "Tai Man", "陳大文", "大文𠮷", "A1234563", "A123456", "61234567")


@pytest.fixture
def clerk(other_store):
    return make_user(roles.COUNTER_STAFF, stores=[other_store], username="cwb-clerk")


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def approved(store, staff, supervisor):
    return make_approved(
        store=store, created_by=staff, reviewer=supervisor, msisdn="+85261234567", iccid=VALID_ICCID
    )


def viewed(page: str) -> list[AuditEvent]:
    return [
        event
        for event in AuditEvent.objects.filter(action=AuditEvent.Action.VIEWED)
        if event.details.get("page") == page
    ]


def test_the_service_page_asks_for_the_purpose_first_and_shows_nothing_of_the_customer(
    clerk_client, approved
):
    page = clerk_client.get(url("counter-service", approved)).content.decode()
    assert 'name="purpose"' in page
    assert "Customer enquiry" in page
    for value in ("C••• T•• M••", "A123", "4567", VALID_ICCID):
        assert value not in page
    [event] = viewed("service_purpose")
    assert "purpose" not in event.details


def test_the_service_page_shows_what_the_service_needs_masked_and_audits_the_purpose(
    clerk_client, approved
):
    response = clerk_client.get(url("counter-service", approved) + "?purpose=update")
    assert response.status_code == 200
    page = response.content.decode()
    assert "C••• T•• M••" in page, "the English name masked"
    assert "陳••𠮷" in page, "the Chinese name masked, a character outside the BMP kept whole"
    assert "A123***(*)" in page
    assert "•••• 4567" in page
    assert VALID_ICCID in page and "MK01" in page and "Approved" in page and "Prepaid" in page
    for value in IDENTITY_VALUES:
        assert value not in page
    assert "the supervisors of MK01 Mong Kok" in page
    assert url("counter-update", approved) + "?purpose=update" in page
    assert url("counter-terminate", approved) not in page, "only what the purpose needs"
    [event] = viewed("service")
    assert event.details == {"page": "service", "purpose": "update"}
    assert event.registration_reference == approved.reference
    assert event.store_code == "MK01"


def test_an_unknown_purpose_is_asked_again(clerk_client, approved):
    response = clerk_client.get(url("counter-service", approved) + "?purpose=curious")
    page = response.content.decode()
    assert 'name="purpose"' in page and "C••• T•• M••" not in page
    assert not viewed("service")


def test_a_draft_of_another_store_cannot_be_opened_for_service(clerk_client, store, staff):
    draft = make_complete_draft(store=store, created_by=staff)
    response = clerk_client.get(url("counter-service", draft) + "?purpose=enquiry")
    assert response.status_code == 404


def test_an_enquiry_offers_no_action(clerk_client, approved):
    page = clerk_client.get(url("counter-service", approved) + "?purpose=enquiry").content.decode()
    assert 'id="no-action"' in page
    assert url("counter-update", approved) not in page


def test_an_update_asked_for_at_another_store_records_that_store(
    clerk_client, clerk, approved, other_store
):
    response = clerk_client.get(url("counter-update", approved) + "?purpose=update")
    assert response.status_code == 200
    assert "MK01 Mong Kok, which holds the record" in response.content.decode()
    [event] = viewed("update")
    assert event.details == {"page": "update"}, "the page names the purpose"
    response = clerk_client.post(
        url("counter-update", approved), {"new_email": "new@example.com"}, follow=True
    )
    assert response.redirect_chain[-1][0] == url("counter-service", approved) + "?purpose=update"
    assert "Supervisors of MK01 Mong Kok, the registration&#x27;s store, decide." in (
        response.content.decode()
    )
    change = PendingChange.objects.get()
    assert change.kind == "update" and change.requested_at_store == other_store
    assert change.requested_by == clerk
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.CHANGE_REQUESTED)
    assert event.details["at_store"] == "CWB1" and event.store_code == "MK01"


def test_a_clerk_of_several_stores_chooses_where_they_serve(client, approved, store, other_store):
    third = make_user(roles.COUNTER_STAFF, stores=[other_store, store], username="two-stores")
    client.force_login(third)
    page = client.get(url("counter-terminate", approved)).content.decode()
    assert 'name="at_store"' in page and "<select" in page
    client.post(
        url("counter-terminate", approved),
        {"termination_reason": "Moving away", "at_store": other_store.pk},
    )
    assert PendingChange.objects.get().requested_at_store == other_store


def test_a_store_the_clerk_does_not_work_at_cannot_be_chosen(clerk_client, approved, store):
    response = clerk_client.post(
        url("counter-terminate", approved),
        {"termination_reason": "Moving away", "at_store": store.pk},
    )
    assert response.status_code == 200
    assert "at_store" in response.context["form"].errors
    assert not PendingChange.objects.exists()


def test_decisions_stay_with_the_supervisors_of_the_records_store(
    clerk, approved, other_store, store
):
    change = services.registration_request_change(
        registration=approved,
        actor=clerk,
        change=services.ChangeDetails(new_email="new@example.com"),
    )
    cwb_supervisor = make_user(roles.SUPERVISOR, supervises=[other_store])
    with pytest.raises(PermissionDenied):
        services.pending_change_decide(change=change, reviewer=cwb_supervisor, approve=True)
    mk_supervisor = make_user(roles.SUPERVISOR, supervises=[store])
    services.pending_change_decide(change=change, reviewer=mk_supervisor, approve=True)
    approved.customer.refresh_from_db()
    assert approved.customer.email == "new@example.com"


def test_no_url_of_the_service_carries_an_identity_value(clerk_client, approved):
    response = clerk_client.post(
        "/counter/find/",
        {"by": "document", "document_type": "hkid", "document_number": "A123456(3)"},
    )
    assert response.status_code == 200, "a search answers with the results, never a redirect"
    pages = [
        "/counter/find/",
        url("counter-service", approved) + "?purpose=sim_loss",
        url("counter-loss", approved) + "?purpose=sim_loss",
        url("counter-replace", approved) + "?purpose=sim_loss",
    ]
    for address in pages:
        page = (
            response.content.decode()
            if address == "/counter/find/"
            else clerk_client.get(address).content.decode()
        )
        for href in [part.split('"')[0] for part in page.split('href="')[1:]] + [
            part.split('"')[0] for part in page.split('action="')[1:]
        ]:
            for value in ("A123456", "CHAN", "6123", "1990"):
                assert value not in href, (address, href)


def test_the_record_page_of_ones_own_store_shows_a_suspension_and_its_replacement(
    staff_client, approved, clerk
):
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert url("counter-loss", approved) in page and url("counter-replace", approved) in page
    services.registration_request_replacement(
        registration=approved,
        actor=clerk,
        identity=services.IdentityCheck(
            document_type="hkid",
            document_number="A1234563",
            name_en="CHAN Tai Man",
            date_of_birth=approved.customer.date_of_birth,
        ),
        sim_kind="physical",
        iccid="89852001234567890126",
        loss="lost",
    )
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert 'id="suspended-notice"' in page and "Suspended" in page
    assert "SIM replacement" in page and "89852001234567890126" in page
    assert "asked at CWB1" in page
    assert "waiting for a supervisor" in page
    assert url("counter-replace", approved) not in page


def test_a_decision_on_a_change_asked_at_another_store_links_home_to_its_service_page(
    clerk, clerk_client, approved, store
):
    """The clerk's home lists the decision; its link opens the service page, not a record page
    of a store the clerk does not browse."""
    change = services.registration_request_change(
        registration=approved, actor=clerk, change=services.ChangeDetails(new_email="n@example.com")
    )
    mk_supervisor = make_user(roles.SUPERVISOR, supervises=[store])
    services.pending_change_decide(change=change, reviewer=mk_supervisor, approve=True)
    home = clerk_client.get("/")
    [item] = [i for i in home.context["counter"]["decided_items"] if approved.reference in i]
    assert url("counter-service", approved) in item
    assert f'href="{url("counter-record", approved)}"' not in item
    assert clerk_client.get(url("counter-service", approved)).status_code == 200
