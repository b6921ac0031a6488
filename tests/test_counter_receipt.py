"""The receipt: what the customer takes away, with the document number masked."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registrations.models import AuditEvent, Registration
from tests.factories import (
    VALID_ICCID,
    identity_form,
    make_complete_draft,
    make_person,
    make_registration,
    url,
    walk_to_identity,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def submitted(client) -> Registration:
    registration = walk_to_identity(client)
    response = client.post(url("counter-identity", registration), identity_form())
    assert response.status_code == 302
    registration.refresh_from_db()
    return registration


def test_the_receipt_shows_the_masked_number_and_never_the_full_one(staff_client):
    registration = submitted(staff_client)
    page = staff_client.get(url("counter-receipt", registration)).content.decode()
    assert "A123***(*)" in page
    for full in ("A1234563", "A123456(3)", "A123456"):
        assert full not in page


def test_the_receipt_shows_reference_store_date_sim_and_status(staff_client, store):
    registration = submitted(staff_client)
    response = staff_client.get(url("counter-receipt", registration))
    page = response.content.decode()
    assert registration.reference in page
    assert store.name in page and store.name_zh in page
    assert VALID_ICCID in page
    assert "+852 6123 4567" in page
    assert "Pending review" in page
    assert "Prepaid" in page
    assert str(registration.submitted_at.astimezone().year) in page


def test_the_receipt_holds_no_other_identity_data(staff_client):
    registration = submitted(staff_client)
    page = staff_client.get(url("counter-receipt", registration)).content.decode()
    for value in ("CHAN Tai Man", "陳大文", "Nathan Road", "91234567"):
        assert value not in page
    # The year of birth as a word: test stores are named with a running number (分店1990).
    assert not re.search(r"\b1990\b", page)


def test_a_passport_number_is_masked_on_the_receipt(staff_client, store, staff):
    registration = make_registration(
        store=store,
        created_by=staff,
        status="pending",
        customer=make_person(document_type="passport", document_number="K12345678"),
    )
    page = staff_client.get(url("counter-receipt", registration)).content.decode()
    assert "K123*****" in page
    assert "K12345678" not in page


def test_viewing_the_receipt_is_an_audit_event(staff_client, store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    staff_client.get(url("counter-receipt", registration))
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.RECEIPT_VIEWED)
    assert event.registration_reference == registration.reference


def test_a_draft_has_no_receipt_yet(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    response = staff_client.get(url("counter-receipt", registration))
    assert response.status_code == 302
    assert response.url == url("counter-resume", registration)
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.RECEIPT_VIEWED).exists()


def test_the_receipt_prints_through_a_static_script_and_print_css(staff_client, store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    page = staff_client.get(url("counter-receipt", registration)).content.decode()
    assert "data-print" in page
    assert "registrations/print.js" in page
    assert "<script>" not in page and "onclick" not in page, "no inline script"
    assert "d-print-none" in page


def test_a_reference_is_short_to_read_out(staff_client):
    registration = submitted(staff_client)
    assert len(registration.reference) == 11
    assert not set(registration.reference) & set("01ILO")


def test_the_status_page_is_step_four_with_the_receipt_link(staff_client):
    registration = submitted(staff_client)
    page = staff_client.get(url("counter-record", registration)).content.decode()
    assert 'id="step-4"' in page
    assert url("counter-receipt", registration) in page
    assert "Pending review" in page
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.VIEWED, registration_reference=registration.reference
    ).exists()


def test_numbers_on_the_receipt_and_the_status_page_do_not_break_across_lines(staff_client):
    registration = submitted(staff_client)
    for name in ("counter-receipt", "counter-record"):
        page = staff_client.get(url(name, registration)).content.decode()
        assert f'class="font-monospace text-nowrap">{VALID_ICCID}<' in page, name
        assert 'text-nowrap" id="' in page and "A123***(*)" in page, name


def test_the_receipt_page_does_not_even_load_the_identity_it_does_not_print(
    staff_client, store, staff
):
    registration = make_registration(store=store, created_by=staff, status="pending")
    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(url("counter-receipt", registration)).content.decode()
    assert "A123***(*)" in page
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    assert '"registrations_person"."document_number"' in sql, "the masked number needs it"
    for field in ("name_en", "name_zh", "date_of_birth", "address", "contact_number", "email"):
        assert f'"registrations_person"."{field}"' not in sql, field
