"""Identity-document copies: checked by content, bounded, encrypted at rest, shown with a reason."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registrations import documents, roles
from registrations.crypto import decrypt_bytes
from registrations.models import AuditEvent, DocumentCopy
from tests.factories import (
    JPEG,
    PDF,
    PNG,
    make_complete_draft,
    make_document_copy,
    make_registration,
    make_returned,
    make_user,
    materials_form,
    start_draft,
    upload,
    url,
)
from tests.storage import all_stored_bytes, put_stored, remove_stored, stored_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def document_url(document: DocumentCopy) -> str:
    return reverse("document-copy", args=[document.registration.reference, document.pk])


# What is accepted


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(PNG, "image/png"), (JPEG, "image/jpeg"), (PDF, "application/pdf")],
)
def test_jpeg_png_and_pdf_are_recognised_by_their_first_bytes(data, content_type):
    assert documents.sniff_content_type(data) == content_type
    checked = documents.check_upload(upload(data, name="scan.bin", content_type="text/plain"))
    assert checked.content_type == content_type
    assert checked.data == data


@pytest.mark.parametrize(
    "data",
    [
        b"just some text",
        b"GIF89a\x01\x00",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        b"PK\x03\x04",
    ],
)
def test_other_content_is_refused_whatever_the_name(data):
    with pytest.raises(ValidationError) as excinfo:
        documents.check_upload(upload(data, name="photo.png", content_type="image/png"))
    assert excinfo.value.code == "document_type"


def test_a_png_named_file_with_text_content_is_refused_beside_the_field_keeping_the_rest(
    staff_client,
):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(identity_copy=upload(b"not an image at all", name="hkid.png")),
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "This file is not a JPEG or PNG image or a PDF document" in str(
        form.errors["identity_copy"]
    )
    assert form["iccid"].value() == materials_form()["iccid"]
    assert form["msisdn"].value() == "6123 4567"
    assert not DocumentCopy.objects.exists()


def test_a_too_large_file_is_refused_with_its_size_and_the_limit(staff_client, settings):
    settings.DOCUMENT_MAX_BYTES = 1024
    registration = start_draft(staff_client)
    big = PNG + b"\x00" * 4000
    response = staff_client.post(
        url("counter-materials", registration), materials_form(identity_copy=upload(big))
    )
    assert response.status_code == 200
    message = str(response.context["form"].errors["identity_copy"])
    assert "This file is 3.9\xa0KB; the limit is 1.0\xa0KB." in message
    assert response.context["form"]["iccid"].value() == materials_form()["iccid"]
    assert not DocumentCopy.objects.exists()


def test_an_empty_file_is_refused(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration), materials_form(identity_copy=upload(b""))
    )
    assert "empty" in str(response.context["form"].errors["identity_copy"])


def test_the_stored_type_comes_from_the_content_not_the_browser(staff_client):
    registration = start_draft(staff_client)
    staff_client.post(
        url("counter-materials", registration),
        materials_form(identity_copy=upload(PNG, name="scan.pdf", content_type="application/pdf")),
    )
    assert registration.documents.get().content_type == "image/png"


# How it is kept


def test_the_stored_file_is_encrypted_under_a_random_name_and_decrypts_back(
    staff_client, private_storage
):
    secret = PNG + b"CHAN Tai Man A123456(3)"
    registration = start_draft(staff_client)
    staff_client.post(
        url("counter-materials", registration), materials_form(identity_copy=upload(secret))
    )
    copy = registration.documents.get()
    assert len(copy.stored_name) == 32 and int(copy.stored_name, 16) >= 0
    stored = stored_bytes(copy.stored_name)
    assert secret not in stored
    assert b"CHAN Tai Man" not in stored and b"A123456" not in stored
    assert decrypt_bytes(stored) == secret
    assert copy.size == len(secret)
    assert "hkid" not in copy.stored_name
    assert list(all_stored_bytes()) == [f"documents/{copy.stored_name}"]


def test_no_static_or_media_url_serves_a_stored_copy(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    name = registration.documents.get().stored_name
    for path in (
        f"/media/{name}",
        f"/media/documents/{name}",
        f"/static/{name}",
        f"/documents/{name}",
        f"/private/documents/{name}",
    ):
        assert staff_client.get(path).status_code == 404


def test_stored_names_cannot_point_outside_the_folder():
    with pytest.raises(ValueError):
        documents.storage_name("../../etc/passwd")


# Who sees it, and how


def test_viewing_a_copy_asks_for_a_reason_and_is_audited(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    copy = registration.documents.get()
    page = staff_client.get(document_url(copy))
    assert page.status_code == 200
    assert 'name="reason"' in page.content.decode()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_VIEWED).exists()

    response = staff_client.post(document_url(copy), {"reason": ""})
    assert "Say why you need to see this copy." in response.content.decode()

    response = staff_client.post(document_url(copy), {"reason": "check_against_original"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_VIEWED)
    assert event.reason == "check_against_original"
    assert event.registration_reference == registration.reference
    assert event.details == {"document": copy.pk, "kind": "identity"}
    assert event.actor == staff


def test_the_copy_opens_in_a_new_tab_and_the_reason_page_leads_back(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    copy = registration.documents.get()
    page = staff_client.get(document_url(copy)).content.decode()
    start = page.rindex("<form", 0, page.index('id="document-reason-form"'))
    form = page[start : page.index("</form>", start)]
    assert 'target="_blank"' in form
    assert "novalidate" not in form, "the browser asks for the reason before a tab opens"
    assert 'id="copy-opened" hidden' in form and "The copy opened in a new tab." in form
    assert "registrations/document_view.js" in page
    assert "<script>" not in page, "no inline script"
    back = f'href="{url("counter-record", registration)}" id="link-back"'
    assert back in page and "Back to the record" in page


def test_a_supervisor_goes_back_from_the_reason_page_to_the_review_page(
    client, store, staff, supervisor
):
    registration = make_registration(store=store, created_by=staff, status="pending")
    copy = make_document_copy(registration)
    client.force_login(supervisor)
    page = client.get(document_url(copy)).content.decode()
    review = reverse("review-detail", args=[registration.reference])
    assert f'href="{review}" id="link-back"' in page


def test_counter_staff_cannot_view_a_copy_once_the_record_is_submitted(staff_client, store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    copy = make_document_copy(registration)
    assert staff_client.get(document_url(copy)).status_code == 403
    response = staff_client.post(document_url(copy), {"reason": "check_against_original"})
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_VIEWED).exists()


def test_counter_staff_may_view_a_copy_of_a_returned_record(staff_client, store, staff, supervisor):
    registration = make_returned(store=store, created_by=staff, reviewer=supervisor)
    copy = make_document_copy(registration, data=PDF)
    response = staff_client.post(document_url(copy), {"reason": "correct_returned_record"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"


def test_a_supervisor_of_the_store_may_view_a_copy_of_a_pending_record(
    client, store, staff, supervisor
):
    registration = make_registration(store=store, created_by=staff, status="pending")
    copy = make_document_copy(registration, data=JPEG)
    client.force_login(supervisor)
    response = client.post(document_url(copy), {"reason": "review_submission"})
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == JPEG


def test_a_supervisor_of_another_store_and_other_roles_cannot_view_a_copy(
    client, store, other_store, staff, compliance
):
    registration = make_registration(store=store, created_by=staff, status="pending")
    copy = make_document_copy(registration)
    elsewhere = make_user(roles.SUPERVISOR, supervises=[other_store])
    client.force_login(elsewhere)
    assert client.post(document_url(copy), {"reason": "review_submission"}).status_code == 404
    client.force_login(compliance)
    assert client.post(document_url(copy), {"reason": "review_submission"}).status_code == 403


def test_counter_staff_of_another_store_get_404_for_a_copy(client, store, other_store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    copy = registration.documents.get()
    client.force_login(make_user(roles.COUNTER_STAFF, stores=[other_store]))
    assert client.get(document_url(copy)).status_code == 404
    assert client.post(document_url(copy), {"reason": "quality_check"}).status_code == 404


def test_a_copy_of_another_record_cannot_be_reached_through_this_one(staff_client, store, staff):
    mine = make_complete_draft(store=store, created_by=staff)
    other = make_complete_draft(store=store, created_by=staff)
    copy = other.documents.get()
    path = reverse("document-copy", args=[mine.reference, copy.pk])
    assert staff_client.get(path).status_code == 404


def test_the_record_page_links_to_copies_only_for_those_allowed(staff_client, store, staff):
    draft = make_complete_draft(store=store, created_by=staff)
    page = staff_client.get(url("counter-record", draft)).content.decode()
    assert document_url(draft.documents.get()) in page
    pending = make_registration(store=store, created_by=staff, status="pending")
    copy = make_document_copy(pending)
    page = staff_client.get(url("counter-record", pending)).content.decode()
    assert document_url(copy) not in page
    assert "Identity document" in page


# A copy whose file is gone or damaged

UNAVAILABLE = (
    "This copy cannot be shown: the file is missing or damaged. Ask the counter for a new upload."
)


def _lose_file(copy: DocumentCopy) -> None:
    remove_stored(copy.stored_name)


def _damage_file(copy: DocumentCopy) -> None:
    put_stored(copy.stored_name, stored_bytes(copy.stored_name)[:-10] + b"0123456789")


@pytest.mark.parametrize("spoil", [_lose_file, _damage_file], ids=["missing", "damaged"])
def test_a_copy_whose_file_is_missing_or_damaged_says_so_and_the_attempt_is_audited(
    staff_client, store, staff, spoil
):
    registration = make_complete_draft(store=store, created_by=staff)
    copy = registration.documents.get()
    spoil(copy)
    response = staff_client.post(document_url(copy), {"reason": "check_against_original"})
    assert response.status_code == 410
    page = response.content.decode()
    assert UNAVAILABLE in page
    assert 'name="reason"' not in page, "nothing to view: no form to ask again"
    assert url("counter-record", registration) in page
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_VIEWED)
    assert event.details == {"document": copy.pk, "kind": "identity", "available": False}
    assert event.reason == "check_against_original"
    assert event.registration_reference == registration.reference
    assert event.actor == staff


def test_a_supervisor_is_sent_back_to_the_review_page_from_a_missing_copy(
    client, store, staff, supervisor
):
    registration = make_registration(store=store, created_by=staff, status="pending")
    copy = make_document_copy(registration)
    _lose_file(copy)
    client.force_login(supervisor)
    response = client.post(document_url(copy), {"reason": "review_submission"})
    assert response.status_code == 410
    assert UNAVAILABLE in response.content.decode()
    assert reverse("review-detail", args=[registration.reference]) in response.content.decode()
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_VIEWED)
    assert event.details["available"] is False and event.actor == supervisor


# The record page lists the copies


def test_the_record_page_costs_the_same_queries_for_one_copy_or_five(staff_client, store, staff):
    def queries_for_record_page_with(copies: int) -> int:
        registration = make_registration(store=store, created_by=staff, furthest_step=3)
        links = [document_url(make_document_copy(registration)) for _ in range(copies)]
        with CaptureQueriesContext(connection) as queries:
            page = staff_client.get(url("counter-record", registration)).content.decode()
        assert all(link in page for link in links), "each copy has its View link"
        return len(queries.captured_queries)

    assert queries_for_record_page_with(1) == queries_for_record_page_with(5)
