"""Updates of information and terminations at the counter, recorded as pending changes."""

import pytest
from django.urls import reverse

from registrations import roles
from registrations.models import AuditEvent, PendingChange, Registration
from tests.factories import (
    JPEG,
    make_approved,
    make_person,
    make_registration,
    make_user,
    upload,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def url(name: str, registration: Registration) -> str:
    return reverse(name, args=[registration.reference])


@pytest.fixture
def approved(store, staff, supervisor):
    return make_approved(store=store, created_by=staff, reviewer=supervisor, msisdn="+85261234567")


def searched() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.SEARCHED))


# Finding the registration


def test_find_by_mobile_number_goes_to_the_record_by_its_reference(staff_client, approved):
    response = staff_client.post(reverse("counter-find"), {"by": "msisdn", "msisdn": "6123 4567"})
    assert response.status_code == 302
    assert response.url == url("counter-record", approved)
    assert "6123" not in response.url
    [event] = searched()
    assert event.details == {"by": "msisdn", "matches": 1}
    assert "6123" not in repr(event.details) + event.reason


def test_find_by_document_uses_the_blind_index_however_the_number_is_typed(staff_client, approved):
    response = staff_client.post(
        reverse("counter-find"),
        {"by": "document", "document_type": "hkid", "document_number": "a 123456 (3)"},
    )
    assert response.url == url("counter-record", approved)
    [event] = searched()
    assert event.details == {"by": "document", "matches": 1}


def test_find_lists_several_matches_without_putting_the_number_in_a_url(
    staff_client, store, staff, supervisor, approved
):
    other = make_approved(store=store, created_by=staff, reviewer=supervisor)
    response = staff_client.post(
        reverse("counter-find"),
        {"by": "document", "document_type": "hkid", "document_number": "A123456(3)"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    results = page[page.index('id="find-results"') :]
    assert url("counter-record", approved) in results and url("counter-record", other) in results
    assert "A123456" not in results, "the list links by reference only"
    assert searched()[0].details["matches"] == 2


def test_find_only_returns_approved_registrations_of_the_staff_stores(
    staff_client, store, other_store, staff, supervisor
):
    make_registration(store=store, created_by=staff, status="pending", msisdn="+85261234567")
    outsider = make_user(roles.COUNTER_STAFF, stores=[other_store])
    make_approved(
        store=other_store, created_by=outsider, reviewer=supervisor, msisdn="+85261234568"
    )
    for number in ("61234567", "61234568"):
        response = staff_client.post(reverse("counter-find"), {"by": "msisdn", "msisdn": number})
        assert response.status_code == 200
        assert "No approved registration of your store matches." in response.content.decode()
    assert [event.details["matches"] for event in searched()] == [0, 0]


def test_find_checks_what_was_typed(staff_client):
    response = staff_client.post(
        reverse("counter-find"),
        {"by": "document", "document_type": "hkid", "document_number": "A123456(4)"},
    )
    assert "The check digit does not match this HKID number" in str(
        response.context["form"].errors["document_number"]
    )
    response = staff_client.post(reverse("counter-find"), {"by": "msisdn", "msisdn": "12"})
    assert "This is not a valid phone number" in str(response.context["form"].errors["msisdn"])
    assert not searched()


def test_a_search_in_the_query_string_is_ignored(staff_client, approved):
    response = staff_client.get(reverse("counter-find") + "?by=msisdn&msisdn=61234567")
    assert response.status_code == 200
    assert not searched()


# Update of information


def test_an_update_is_recorded_as_a_pending_change_with_field_names_in_the_audit(
    staff_client, approved, staff
):
    response = staff_client.post(
        url("counter-update", approved),
        {"new_address": "Flat 1, 2 New Street, Sha Tin", "new_contact_number": "9876 5432"},
    )
    assert response.status_code == 302
    assert response.url == url("counter-record", approved)
    change = PendingChange.objects.get()
    assert change.kind == "update" and change.status == "pending"
    assert change.new_address == "Flat 1, 2 New Street, Sha Tin"
    assert change.new_contact_number == "+85298765432"
    assert sorted(change.changed_fields) == ["address", "contact_number"]
    assert change.requested_by == staff
    approved.customer.refresh_from_db()
    assert approved.customer.address != "Flat 1, 2 New Street, Sha Tin", "nothing applies yet"
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.CHANGE_REQUESTED)
    assert event.fields == ["address", "contact_number"]
    assert "New Street" not in repr(event.details) and "98765432" not in repr(event.details)
    page = staff_client.get(response.url).content.decode()
    assert "Update of information" in page and "Pending review" in page


def test_an_update_needs_at_least_one_new_value(staff_client, approved):
    response = staff_client.post(url("counter-update", approved), {})
    assert "Enter at least one new value" in response.content.decode()
    assert not PendingChange.objects.exists()


def test_an_update_checks_each_value_and_keeps_the_others(staff_client, approved):
    response = staff_client.post(
        url("counter-update", approved),
        {"new_address": "Flat 1, 2 New Street", "new_contact_number": "12", "new_email": "x"},
    )
    form = response.context["form"]
    assert "This is not a valid phone number" in str(form.errors["new_contact_number"])
    assert "Enter a valid email address." in str(form.errors["new_email"])
    assert form["new_address"].value() == "Flat 1, 2 New Street"
    assert not PendingChange.objects.exists()


def test_a_renewed_document_is_checked_and_its_copy_kept_apart(staff_client, approved):
    response = staff_client.post(
        url("counter-update", approved),
        {"new_document_type": "hkid", "new_document_number": "A123456(4)"},
    )
    assert "The check digit does not match" in str(
        response.context["form"].errors["new_document_number"]
    )
    before = approved.documents.count()
    response = staff_client.post(
        url("counter-update", approved),
        {
            "new_document_type": "passport",
            "new_document_number": "k12345678",
            "renewed_copy": upload(JPEG, name="passport.jpg"),
        },
    )
    assert response.status_code == 302
    change = PendingChange.objects.get()
    assert change.new_document_type == "passport"
    assert change.new_document_number == "K12345678"
    assert change.new_document_copy.content_type == "image/jpeg"
    assert approved.documents.count() == before + 1, "the approved copy is not replaced"


def test_a_termination_is_recorded_with_its_reason(staff_client, approved):
    response = staff_client.post(url("counter-terminate", approved), {"termination_reason": ""})
    assert "Say why the registration is to be terminated." in response.content.decode()
    response = staff_client.post(
        url("counter-terminate", approved), {"termination_reason": "Customer leaves Hong Kong"}
    )
    assert response.status_code == 302
    change = PendingChange.objects.get()
    assert change.kind == "termination"
    assert change.termination_reason == "Customer leaves Hong Kong"
    approved.refresh_from_db()
    assert approved.status == "approved", "a supervisor approves the termination"
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.TERMINATION_REQUESTED)
    assert event.fields == ["termination_reason"]
    assert "Hong Kong" not in repr(event.details)
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert "Termination" in page


def test_a_second_change_waits_until_the_first_is_decided(staff_client, approved):
    staff_client.post(url("counter-update", approved), {"new_email": "new@example.com"})
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert url("counter-terminate", approved) not in page
    response = staff_client.post(
        url("counter-terminate", approved), {"termination_reason": "Moving away"}
    )
    assert "already waiting for review" in response.content.decode()
    assert PendingChange.objects.count() == 1


def test_only_an_approved_registration_can_be_updated_or_terminated(staff_client, store, staff):
    pending = make_registration(store=store, created_by=staff, status="pending")
    for name in ("counter-update", "counter-terminate"):
        response = staff_client.get(url(name, pending))
        assert response.url == url("counter-record", pending)
        response = staff_client.post(url(name, pending), {"termination_reason": "x"})
        assert response.url == url("counter-record", pending)
    assert not PendingChange.objects.exists()


def test_a_company_renews_with_a_business_registration_only(staff_client, store, staff, supervisor):
    company = make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        customer=make_person(
            kind="company", document_type="business_registration", document_number="12345678"
        ),
    )
    response = staff_client.post(
        url("counter-update", company),
        {"new_document_type": "hkid", "new_document_number": "A123456(3)"},
    )
    assert "A company registers with its business registration certificate." in (
        response.content.decode()
    )
