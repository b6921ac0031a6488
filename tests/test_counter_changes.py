"""Updates of information and terminations at the counter, recorded as pending changes."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registrations import selectors, services
from registrations.models import AuditEvent, PendingChange
from tests.factories import (
    JPEG,
    PNG,
    make_approved,
    make_document_copy,
    make_pending_change,
    make_person,
    make_registration,
    upload,
    url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


@pytest.fixture
def approved(store, staff, supervisor):
    return make_approved(store=store, created_by=staff, reviewer=supervisor, msisdn="+85261234567")


def searched() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.SEARCHED))


def ask_for_renewal(client, registration, document_type: str, document_number: str):
    """The counter asks for an update to a renewed document, with a copy of it."""
    return client.post(
        url("counter-update", registration),
        {
            "new_document_type": document_type,
            "new_document_number": document_number,
            "renewed_copy": upload(JPEG, name="renewed.jpg"),
        },
    )


def copies_listed(page: str) -> int:
    """How many copies the record page lists under "Copies on file"."""
    section = page[page.index('id="copies"') : page.index('id="changes"')]
    return section.count('class="list-group-item d-flex')


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
    response = ask_for_renewal(staff_client, approved, "passport", "k12345678")
    assert response.status_code == 302
    change = PendingChange.objects.get()
    assert change.new_document_type == "passport"
    assert change.new_document_number == "K12345678"
    assert change.new_document_copy.content_type == "image/jpeg"
    assert approved.documents.count() == before + 1, "the approved copy is not replaced"


def test_a_renewed_copy_is_not_the_copy_on_file_until_the_update_is_approved(
    staff_client, client, approved, supervisor
):
    original = make_document_copy(approved, data=PNG)
    response = ask_for_renewal(staff_client, approved, "hkid", "Z683365(A)")
    assert response.status_code == 302
    change = PendingChange.objects.get()
    renewed = change.new_document_copy
    assert renewed.kind == "identity"
    assert selectors.document_copy_list_on_file(registration=approved)["identity"] == original
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert copies_listed(page) == 1, "the pending renewed copy is not listed as on file"

    services.pending_change_decide(change=change, reviewer=supervisor, approve=True)
    assert selectors.document_copy_list_on_file(registration=approved)["identity"] == renewed
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert copies_listed(page) == 2


def test_a_rejected_renewed_copy_never_becomes_the_copy_on_file(staff_client, approved, supervisor):
    original = make_document_copy(approved, data=PNG)
    ask_for_renewal(staff_client, approved, "hkid", "Z683365(A)")
    change = PendingChange.objects.get()
    services.pending_change_decide(
        change=change, reviewer=supervisor, approve=False, reason_code="document_mismatch"
    )
    assert selectors.document_copy_list_on_file(registration=approved)["identity"] == original
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert copies_listed(page) == 1
    assert "Rejected" in page


@pytest.mark.parametrize("status", ["pending", "rejected"])
def test_a_stored_renewed_copy_of_an_undecided_or_rejected_update_is_not_on_file(
    staff_client, approved, staff, supervisor, status
):
    original = make_document_copy(approved, data=PNG)
    renewed = make_document_copy(approved, data=JPEG)
    decided = (
        {"decided_by": supervisor, "decided_at": timezone.now()} if status != "pending" else {}
    )
    make_pending_change(
        approved,
        requested_by=staff,
        new={"document_type": "hkid", "document_number": "Z683365A"},
        new_document_copy=renewed,
        status=status,
        **decided,
    )
    assert selectors.document_copy_list_on_file(registration=approved) == {"identity": original}
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert copies_listed(page) == 1


def test_after_an_approved_renewal_a_later_pending_one_leaves_the_approved_copy_on_file(
    staff_client, approved, supervisor
):
    make_document_copy(approved, data=PNG)
    ask_for_renewal(staff_client, approved, "hkid", "Z683365(A)")
    first = PendingChange.objects.get()
    services.pending_change_decide(change=first, reviewer=supervisor, approve=True)
    ask_for_renewal(staff_client, approved, "hkid", "K123456(0)")
    second = PendingChange.objects.get(status="pending")
    on_file = selectors.document_copy_list_on_file(registration=approved)
    assert on_file["identity"] == first.new_document_copy
    assert on_file["identity"] != second.new_document_copy


def test_the_record_page_shows_changes_without_decrypting_their_values(
    staff_client, approved, decrypted
):
    staff_client.post(
        url("counter-update", approved),
        {"new_address": "Flat 1, 2 New Street, Sha Tin", "new_email": "new@example.com"},
    )
    decrypted.clear()
    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(url("counter-record", approved)).content.decode()
    changes = page[page.index('id="changes"') :]
    assert "Update of information" in changes and "Pending review" in changes
    assert "Address, E-mail" in changes
    assert "address, email" not in changes, "labels, not the names of the stored fields"
    assert "New Street" not in page and "new@example.com" not in page
    assert not [where for where in decrypted if where.startswith("PendingChange.")]
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert '"registrations_pendingchange"."new_address"' not in sql
    assert '"registrations_pendingchange"."termination_reason"' not in sql


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


def test_the_changed_fields_of_a_pending_update_are_named_in_the_page_language(
    staff_client, approved
):
    staff_client.post(
        url("counter-update", approved),
        {"new_address": "Flat 1, 2 New Street, Sha Tin", "new_contact_number": "9876 5432"},
    )
    page = staff_client.get(
        url("counter-record", approved), HTTP_ACCEPT_LANGUAGE="zh-hant"
    ).content.decode()
    changes = page[page.index('id="changes"') :]
    assert "地址, 聯絡電話" in changes
    assert "contact_number" not in changes


def test_a_second_change_waits_until_the_first_is_decided(staff_client, approved):
    staff_client.post(url("counter-update", approved), {"new_email": "new@example.com"})
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert url("counter-terminate", approved) not in page
    assert url("counter-update", approved) not in page
    assert "A change is waiting for a supervisor's decision" in page
    response = staff_client.post(
        url("counter-terminate", approved), {"termination_reason": "Moving away"}
    )
    assert "already waiting for review" in response.content.decode()
    assert PendingChange.objects.count() == 1


def test_an_approved_record_without_a_pending_change_offers_update_and_terminate(
    staff_client, approved
):
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert url("counter-update", approved) in page and url("counter-terminate", approved) in page
    assert "waiting for a supervisor" not in page


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
