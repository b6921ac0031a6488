"""The counter flow: four steps, drafts saved in the database, messages beside the fields."""

import datetime
from unittest import mock

import pytest
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registrations import roles
from registrations.models import (
    AuditEvent,
    DocumentCopy,
    Person,
    Registration,
    StatusChange,
)
from tests.factories import (
    CUSTOMER,
    PNG,
    VALID_EID,
    VALID_ICCID,
    channel_form,
    identity_form,
    make_complete_draft,
    make_document_copy,
    make_registration,
    make_returned,
    make_user,
    materials_form,
    start_draft,
    upload,
    url,
    walk_to_identity,
)
from tests.storage import put_stored, stored_bytes, stored_names

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def errors_of(response) -> dict:
    return response.context["form"].errors


def refused(client, page: str, registration: Registration, data: dict):
    """Post a step's form that the page refuses: the form shown again, with its messages."""
    response = client.post(url(page, registration), data)
    assert response.status_code == 200
    return response.context["form"]


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def step_item(page: str, number: int) -> str:
    """The progress bar's entry of one step."""
    start = page.index(f'id="step-{number}"')
    return page[start : page.index("</li>", start)]


def label_of(page: str, field: str) -> str:
    """The label (or a radio group's legend) of a field as rendered, asterisk included."""
    start = page.index(f'id="div_id_{field}"')
    ends = [page.find(tag, start) for tag in ("</label>", "</legend>")]
    return page[start : min(end for end in ends if end != -1)]


# Starting, the steps, submitting


def test_new_registration_creates_a_draft_of_the_staff_store_and_opens_step_one(
    staff_client, store, staff
):
    response = staff_client.post(reverse("counter-new"))
    registration = Registration.objects.get()
    assert response.status_code == 302
    assert response.url == url("counter-materials", registration)
    assert registration.status == "draft"
    assert registration.store == store
    assert registration.created_by == staff
    assert registration.furthest_step == 1
    [event] = events(AuditEvent.Action.DRAFT_CREATED)
    assert event.registration_reference == registration.reference


def test_the_new_registration_page_offers_a_start_button_and_a_store_choice_when_several(
    client, store, other_store
):
    user = make_user(roles.COUNTER_STAFF, stores=[store, other_store])
    client.force_login(user)
    page = client.get(reverse("counter-new"))
    assert page.status_code == 200
    assert 'name="store"' in page.content.decode()
    response = client.post(reverse("counter-new"), {})
    assert response.status_code == 200
    assert "Choose the store" in response.content.decode()
    response = client.post(reverse("counter-new"), {"store": other_store.pk})
    assert Registration.objects.get().store == other_store


def test_the_whole_flow_submits_for_review_with_its_history_and_audit(staff_client, staff):
    registration = walk_to_identity(staff_client)
    assert registration.furthest_step == 3
    response = staff_client.post(url("counter-identity", registration), identity_form())
    assert response.status_code == 302
    assert response.url == url("counter-record", registration)

    registration.refresh_from_db()
    assert registration.status == "pending"
    assert registration.submitted_by == staff
    assert registration.submitted_at is not None
    assert registration.declaration_accepted
    assert registration.iccid == VALID_ICCID
    assert registration.msisdn == "+85261234567"
    customer = registration.customer
    assert customer.name_zh == CUSTOMER["name_zh"]
    assert customer.document_number == "A1234563"
    assert customer.contact_number == "+85291234567"
    assert customer.date_of_birth == datetime.date(1990, 5, 17)
    assert registration.documents.filter(kind="identity").count() == 1

    [change] = StatusChange.objects.filter(registration=registration)
    assert (change.from_status, change.to_status, change.actor) == ("draft", "pending", staff)
    [submitted] = events(AuditEvent.Action.SUBMITTED)
    assert submitted.registration_reference == registration.reference

    page = staff_client.get(response.url)
    assert "Submitted for review" in page.content.decode()
    assert "A123***(*)" in page.content.decode()


def test_each_save_is_an_audit_event_with_field_names_and_no_values(staff_client):
    registration = walk_to_identity(staff_client)
    staff_client.post(url("counter-identity", registration), identity_form(action="save"))
    saved = events(AuditEvent.Action.DRAFT_SAVED)
    assert [event.details["step"] for event in saved] == [1, 2, 3]
    assert "iccid" in saved[0].fields and "msisdn" in saved[0].fields
    assert {"name_en", "name_zh", "document_number", "address"} <= set(saved[2].fields)
    uploaded = events(AuditEvent.Action.DOCUMENT_UPLOADED)
    assert uploaded and uploaded[0].details["kind"] == "identity"
    dump = repr(list(AuditEvent.objects.values()))
    for value in ("CHAN Tai Man", "陳大文", "A123456", "Nathan", "91234567", "tai.man"):
        assert value not in dump


def test_the_progress_bar_shows_four_steps_and_links_only_to_steps_saved(staff_client):
    registration = start_draft(staff_client)
    page = staff_client.get(url("counter-materials", registration)).content.decode()
    for number in (1, 2, 3, 4):
        assert f'id="step-{number}"' in page
    assert 'aria-current="step"' in page
    assert url("counter-channel", registration) not in page
    staff_client.post(url("counter-materials", registration), materials_form())
    page = staff_client.get(url("counter-channel", registration)).content.decode()
    assert url("counter-materials", registration) in page


def test_a_step_not_yet_reached_cannot_be_opened(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.get(url("counter-identity", registration))
    assert response.status_code == 302
    assert response.url == url("counter-materials", registration)


def test_back_and_next_keep_what_was_entered(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(action="back", declaration_accepted=None),
    )
    assert response.url == url("counter-channel", registration)
    response = staff_client.post(url("counter-channel", registration), channel_form(action="back"))
    assert response.url == url("counter-materials", registration)

    materials = staff_client.get(url("counter-materials", registration)).context["form"]
    assert materials["iccid"].value() == VALID_ICCID
    assert materials["msisdn"].value() == "+85261234567"
    assert materials["original_sighted"].value()
    identity = staff_client.get(url("counter-identity", registration)).context["form"]
    assert identity["name_en"].value() == CUSTOMER["name_en"]
    assert identity["name_zh"].value() == CUSTOMER["name_zh"]
    assert identity["document_number"].value() == "A123456(3)"
    assert identity["address"].value() == CUSTOMER["address"]
    assert identity["date_of_birth"].value() == datetime.date(1990, 5, 17)


def test_save_draft_keeps_a_partly_filled_step_without_asking_for_the_rest(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration),
        {
            "customer_kind": "individual",
            "document_type": "hkid",
            "sim_kind": "physical",
            "iccid": VALID_ICCID,
            "action": "save",
        },
    )
    assert response.status_code == 302
    assert response.url == url("counter-materials", registration)
    registration.refresh_from_db()
    assert registration.iccid == VALID_ICCID
    assert registration.furthest_step == 1, "an incomplete step does not open the next one"
    page = staff_client.get(response.url).content.decode()
    assert "Draft saved" in page


@pytest.mark.parametrize("action", ["save", "next"])
def test_the_fields_needed_to_complete_the_step_keep_their_asterisk_whatever_the_button(
    staff_client, action
):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(identity_copy=None, original_sighted=None, msisdn="12345", action=action),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "msisdn" in errors_of(response)
    for field in ("original_sighted", "identity_copy", "msisdn", "plan"):
        assert 'class="asteriskField">*' in label_of(page, field), field
    assert 'class="asteriskField">*' not in label_of(page, "eid")


def test_a_partial_save_still_saves_without_the_fields_marked_as_needed(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(identity_copy=None, original_sighted=None, msisdn="", action="save"),
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.iccid == VALID_ICCID and registration.furthest_step == 1
    page = staff_client.get(response.url).content.decode()
    assert 'class="asteriskField">*' in label_of(page, "msisdn")


def test_next_asks_for_what_the_step_needs(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(identity_copy=None, original_sighted=None, msisdn="", iccid=""),
    )
    assert response.status_code == 200
    errors = errors_of(response)
    assert "Upload a photo or scan of the identity document." in errors["identity_copy"]
    assert "Confirm that you have seen the original document." in errors["original_sighted"]
    assert "Enter the mobile number of this SIM." in errors["msisdn"]
    assert "Enter the ICCID printed on the SIM card." in errors["iccid"]


def test_the_identity_data_never_goes_to_the_session(staff_client):
    registration = walk_to_identity(staff_client)
    staff_client.post(url("counter-identity", registration), identity_form(action="save"))
    for session in Session.objects.all():
        decoded = repr(session.get_decoded())
        for value in ("CHAN", "A123456", "Nathan", "91234567", "61234567"):
            assert value not in decoded
    assert all(
        "CHAN" not in cookie.value and "A123456" not in cookie.value
        for cookie in staff_client.cookies.values()
    )


def test_no_identity_value_ever_appears_in_a_url(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(url("counter-identity", registration), identity_form())
    assert "A123456" not in response.url and "CHAN" not in response.url


# Validation beside the field, keeping the rest


def test_wrong_hkid_check_digit_shows_message_and_keeps_the_other_fields(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration), identity_form(document_number="A123456(4)")
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "The check digit does not match this HKID number" in str(form.errors["document_number"])
    assert form["name_en"].value() == CUSTOMER["name_en"]
    assert form["name_zh"].value() == CUSTOMER["name_zh"]
    assert form["address"].value() == CUSTOMER["address"]
    assert form["document_number"].value() == "A123456(4)"
    page = response.content.decode()
    assert "The check digit does not match" in page
    assert CUSTOMER["address"] in page
    registration.refresh_from_db()
    assert registration.status == "draft"


@pytest.mark.parametrize(
    "typed",
    [
        "A123456(3)",
        "a123456(3)",
        "A 123456 (3)",
        "XA123456(8)",
        "xa1234568",
        "Z683365(A)",
        "AB987654(3)",
        "K123456(0)",
    ],
)
def test_hkid_is_accepted_with_one_or_two_letters_brackets_spaces_or_lower_case(
    staff_client, typed
):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration), identity_form(document_number=typed, action="save")
    )
    assert response.status_code == 302, errors_of(response)


@pytest.mark.parametrize(
    ("document_type", "bad", "good", "message"),
    [
        ("passport", "12", "K12345678", "A passport number has 6 to 9 letters and digits"),
        ("macao_id", "9234567(8)", "1234567(8)", "A Macao identity card number has 8 digits"),
        ("exit_entry_permit", "X1234567", "CA1234567", "An Exit-Entry Permit number is C"),
    ],
)
def test_document_numbers_are_checked_by_document_type(
    staff_client, document_type, bad, good, message
):
    registration = walk_to_identity(
        staff_client, materials=materials_form(document_type=document_type)
    )
    form = refused(
        staff_client,
        "counter-identity",
        registration,
        identity_form(document_number=bad, action="save"),
    )
    assert message in str(form.errors["document_number"])
    response = staff_client.post(
        url("counter-identity", registration), identity_form(document_number=good, action="save")
    )
    assert response.status_code == 302


def test_a_company_registers_with_a_valid_business_registration_number(staff_client):
    response_registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", response_registration),
        materials_form(customer_kind="company", document_type="hkid"),
    )
    assert "A company registers with its business registration certificate." in str(
        errors_of(response)["document_type"]
    )
    registration = walk_to_identity(
        staff_client,
        materials=materials_form(customer_kind="company", document_type="business_registration"),
    )
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(document_number="1234", action="save"),
    )
    assert "Enter the 8-digit business registration number" in str(
        errors_of(response)["document_number"]
    )
    form = response.context["form"]
    assert "date_of_birth" not in form.fields, "a company has no date of birth"


def representative_section(page: str) -> str:
    """The opening tag of the confirming adult's (or responsible person's) fieldset."""
    start = page.index('id="representative-fields"')
    return page[start : page.index(">", start)]


def test_the_confirming_adult_section_opens_itself_only_when_needed(staff_client):
    registration = walk_to_identity(staff_client)
    page = staff_client.get(url("counter-identity", registration)).content.decode()
    section = representative_section(page)
    assert 'data-minor-age="16"' in section and 'data-adult-age="18"' in section
    assert "data-representative-open" not in section, "an adult customer needs nobody"
    assert "hidden" not in section, "without JavaScript the section shows"
    assert 'id="representative-show"' in page and "Add a confirming adult" in page
    assert "registrations/counter.js" in page
    assert "Copy of the confirming adult&#x27;s identity document" in page

    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(representative_name_en="CHAN Siu Ming", action="save"),
    )
    page = staff_client.get(response.url).content.decode()
    assert "data-representative-open" in representative_section(page), "values entered"

    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(representative_name_en="", representative_document_number="A1234563"),
    )
    assert "representative_document_type" in errors_of(response)
    page = response.content.decode()
    assert "data-representative-open" in representative_section(page), "an error to correct"


def test_the_responsible_person_of_a_company_always_shows(staff_client):
    registration = walk_to_identity(
        staff_client,
        materials=materials_form(customer_kind="company", document_type="business_registration"),
    )
    page = staff_client.get(url("counter-identity", registration)).content.decode()
    assert "data-representative-open" in representative_section(page)
    assert 'id="representative-show"' not in page
    assert "Copy of the responsible person&#x27;s identity document (optional)" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("iccid", "898520012345678901", "An ICCID has 19 or 20 digits; this one has 18."),
        ("iccid", "8985200123456789018", "The last digit of this ICCID does not match"),
        ("iccid", "89852001234567890A", "An ICCID has only digits."),
        ("msisdn", "1234", "This is not a valid phone number."),
    ],
)
def test_sim_identifiers_are_checked_and_the_rest_kept(staff_client, field, value, message):
    registration = start_draft(staff_client)
    form = refused(
        staff_client, "counter-materials", registration, materials_form(**{field: value})
    )
    assert message in str(form.errors[field])
    assert form["plan"].value() == "prepaid"
    assert form[field].value() == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8904903212345123451234567890123", "An EID has 32 digits; this one has 31."),
        ("89049032123451234512345678901234", "The last two digits of this EID do not match"),
    ],
)
def test_an_eid_needs_32_digits_and_its_mod_97_check(staff_client, value, message):
    registration = start_draft(staff_client)
    form = refused(
        staff_client,
        "counter-materials",
        registration,
        materials_form(sim_kind="esim", iccid="", eid=value),
    )
    assert message in str(form.errors["eid"])
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(sim_kind="esim", iccid="", eid=VALID_EID),
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert (registration.eid, registration.iccid) == (VALID_EID, "")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("date_of_birth", "2999-01-01", "The date of birth cannot be in the future."),
        ("date_of_birth", "1990-02-30", "Enter a valid date."),
        ("email", "not-an-email", "Enter a valid email address."),
        ("contact_number", "12", "This is not a valid phone number."),
        ("name_en", "", "Enter the name in English as on the document."),
    ],
)
def test_identity_fields_are_checked_and_the_rest_kept(staff_client, field, value, message):
    registration = walk_to_identity(staff_client)
    form = refused(staff_client, "counter-identity", registration, identity_form(**{field: value}))
    assert message in str(form.errors[field])
    kept = "address" if field != "address" else "name_en"
    assert form[kept].value() == identity_form()[kept]


def test_the_declaration_is_needed_to_submit_but_not_to_save(staff_client):
    registration = walk_to_identity(staff_client)
    form = refused(
        staff_client, "counter-identity", registration, identity_form(declaration_accepted=None)
    )
    assert "The customer must accept the declaration" in str(form.errors["declaration_accepted"])
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(declaration_accepted=None, action="save"),
    )
    assert response.status_code == 302


def test_an_online_pre_registration_needs_its_reference(staff_client):
    registration = start_draft(staff_client)
    staff_client.post(url("counter-materials", registration), materials_form())
    form = refused(staff_client, "counter-channel", registration, channel_form(channel="online"))
    assert "Enter the reference of the online pre-registration." in str(
        form.errors["online_reference"]
    )
    response = staff_client.post(
        url("counter-channel", registration),
        channel_form(channel="online", online_reference="web-2024-0001"),
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.channel == "online"
    assert registration.online_reference == "WEB-2024-0001"


def test_a_chinese_name_outside_the_basic_plane_is_kept_exactly(staff_client):
    registration = walk_to_identity(staff_client)
    staff_client.post(
        url("counter-identity", registration), identity_form(name_zh="𠮷野家", action="save")
    )
    registration.refresh_from_db()
    assert registration.customer.name_zh == "𠮷野家"


# The identity-document copy across posts


def test_a_good_file_is_kept_when_other_fields_fail_and_need_not_be_uploaded_again(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration), materials_form(iccid="123")
    )
    assert response.status_code == 200
    assert registration.documents.filter(kind="identity").count() == 1
    page = response.content.decode()
    assert "A copy is on file" in page
    response = staff_client.post(
        url("counter-materials", registration), materials_form(identity_copy=None)
    )
    assert response.status_code == 302
    assert registration.documents.filter(kind="identity").count() == 1


def test_a_new_upload_replaces_the_copy_on_file(
    staff_client, django_capture_on_commit_callbacks, private_storage
):
    registration = start_draft(staff_client)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(url("counter-materials", registration), materials_form(action="save"))
        first = registration.documents.get()
        staff_client.post(url("counter-materials", registration), materials_form(action="save"))
    second = registration.documents.get()
    assert first.pk != second.pk
    assert stored_names() == {second.stored_name}


# Scope: the store's drafts, nobody else's


def test_another_counter_of_the_same_store_resumes_the_draft(client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff, furthest_step=2)
    colleague = make_user(roles.COUNTER_STAFF, stores=[store])
    client.force_login(colleague)
    home = client.get(reverse("home")).content.decode()
    assert url("counter-resume", registration) in home
    response = client.get(url("counter-resume", registration))
    assert response.url == url("counter-channel", registration)
    response = client.post(url("counter-channel", registration), channel_form())
    assert response.status_code == 302


@pytest.mark.parametrize(
    "name",
    [
        "counter-record",
        "counter-resume",
        "counter-materials",
        "counter-channel",
        "counter-identity",
        "counter-receipt",
        "counter-update",
        "counter-terminate",
    ],
)
def test_counter_staff_of_another_store_get_404(client, store, other_store, staff, name):
    registration = make_complete_draft(store=store, created_by=staff)
    outsider = make_user(roles.COUNTER_STAFF, stores=[other_store])
    client.force_login(outsider)
    assert client.get(url(name, registration)).status_code == 404
    if name not in ("counter-record", "counter-resume", "counter-receipt"):
        assert client.post(url(name, registration), {"action": "save"}).status_code == 404
    assert client.post(url("counter-discard", registration)).status_code == 404
    assert Registration.objects.filter(pk=registration.pk).exists()


def test_counter_pages_show_only_the_stores_where_one_works_not_those_one_supervises(
    client, store, other_store, staff
):
    both = make_user(roles.COUNTER_STAFF, stores=[store], supervises=[other_store])
    both.groups.add(Group.objects.get(name=roles.SUPERVISOR))
    mine = make_complete_draft(store=store, created_by=staff)
    supervised = make_complete_draft(store=other_store, created_by=staff)
    client.force_login(both)
    assert client.get(url("counter-record", mine)).status_code == 200
    assert client.get(url("counter-record", supervised)).status_code == 404


@pytest.mark.parametrize("who", ["supervisor", "compliance"])
def test_other_roles_cannot_open_counter_pages(client, store, staff, who, request):
    registration = make_complete_draft(store=store, created_by=staff)
    client.force_login(request.getfixturevalue(who))
    for name in ("counter-new", "counter-find"):
        assert client.get(reverse(name)).status_code == 403
    assert client.get(url("counter-materials", registration)).status_code == 403


def test_pages_need_a_login(client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    response = client.get(url("counter-materials", registration))
    assert response.status_code == 302 and "/login/" in response.url


def test_the_home_page_starts_a_registration_and_the_nav_has_the_counter_entries(staff_client):
    page = staff_client.get(reverse("home")).content.decode()
    assert f'action="{reverse("counter-new")}"' in page
    assert 'id="nav-new-registration"' in page and 'id="nav-find-customer"' in page


# After submission; returned records


def test_a_submitted_record_can_no_longer_be_edited(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    staff_client.post(url("counter-identity", registration), identity_form())
    registration.refresh_from_db()
    assert registration.status == "pending"
    response = staff_client.get(url("counter-materials", registration))
    assert response.url == url("counter-record", registration)
    response = staff_client.post(url("counter-identity", registration), identity_form())
    assert response.url == url("counter-record", registration)
    assert StatusChange.objects.filter(registration=registration).count() == 1


def test_a_returned_record_is_corrected_and_resubmitted(staff_client, store, staff, supervisor):
    registration = make_returned(store=store, created_by=staff, reviewer=supervisor)
    make_document_copy(registration)
    home = staff_client.get(reverse("home")).content.decode()
    assert url("counter-resume", registration) in home
    page = staff_client.get(url("counter-identity", registration)).content.decode()
    assert "Document unreadable" in page
    response = staff_client.post(
        url("counter-identity", registration), identity_form(address="New address 1")
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == "pending"
    assert registration.customer.address == "New address 1"
    assert registration.reviewer is None and registration.reason_code == ""
    [change] = StatusChange.objects.filter(registration=registration)
    assert (change.from_status, change.to_status) == ("returned", "pending")
    assert events(AuditEvent.Action.RESUBMITTED)
    assert not events(AuditEvent.Action.SUBMITTED)


def test_a_returned_record_shows_the_supervisors_comment_on_its_pages(
    staff_client, store, staff, supervisor
):
    registration = make_returned(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        comment="The photo is blurred; take it again.",
    )
    for name in ("counter-materials", "counter-identity", "counter-record"):
        page = staff_client.get(url(name, registration)).content.decode()
        assert "The photo is blurred; take it again." in page, name


def _returned(store, staff, supervisor, reason_code: str) -> Registration:
    registration = make_returned(
        store=store, created_by=staff, reviewer=supervisor, reason_code=reason_code
    )
    make_document_copy(registration)
    return registration


@pytest.mark.parametrize(
    ("reason_code", "step_name"),
    [
        ("document_unreadable", "counter-materials"),
        ("document_mismatch", "counter-materials"),
        ("document_expired", "counter-materials"),
        ("materials_incomplete", "counter-materials"),
        ("minor_without_adult", "counter-identity"),
        ("over_limit", "counter-identity"),
        ("other", "counter-identity"),
    ],
)
def test_correct_and_resubmit_opens_the_step_where_the_reason_is_corrected(
    staff_client, store, staff, supervisor, reason_code, step_name
):
    registration = _returned(store, staff, supervisor, reason_code)
    page = staff_client.get(url("counter-record", registration)).content.decode()
    assert f'href="{url(step_name, registration)}" id="link-resume"' in page
    assert "Correct and resubmit" in page
    response = staff_client.get(url("counter-resume", registration))
    assert response.url == url(step_name, registration), "the home page's link leads there too"


def test_a_returned_record_page_is_at_its_status_and_marks_the_step_to_correct(
    staff_client, store, staff, supervisor
):
    registration = _returned(store, staff, supervisor, "document_unreadable")
    page = staff_client.get(url("counter-record", registration)).content.decode()
    steps = {number: step_item(page, number) for number in (1, 2, 3, 4)}
    assert 'aria-current="step"' in steps[4]
    assert 'aria-current="step"' not in steps[3]
    assert "To correct" in steps[1]
    assert "To correct" not in steps[3]
    assert url("counter-materials", registration) in steps[1]
    page = staff_client.get(url("counter-materials", registration)).content.decode()
    assert "To correct" in step_item(page, 1)


# Each page decrypts only what it shows

PERSON_FIELDS = ("name_en", "name_zh", "date_of_birth", "address", "contact_number", "email")


@pytest.mark.parametrize(
    ("name", "status", "shown"),
    [
        ("counter-resume", "draft", set()),
        ("counter-materials", "draft", set()),
        ("counter-channel", "draft", set()),
        ("counter-record", "draft", {"Person.document_number"}),
        ("counter-record", "approved", {"Person.document_number"}),
        ("counter-receipt", "pending", {"Person.document_number"}),
        ("counter-update", "approved", {"Person.document_number"}),
        ("counter-terminate", "approved", {"Person.document_number"}),
    ],
)
def test_a_page_decrypts_no_identity_field_it_does_not_show(
    staff_client, store, staff, supervisor, decrypted, name, status, shown
):
    decided = {"reviewer": supervisor, "decided_at": timezone.now()} if status == "approved" else {}
    registration = make_registration(
        store=store, created_by=staff, status=status, furthest_step=3, **decided
    )
    decrypted.clear()
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(url(name, registration))
    assert response.status_code in (200, 302)
    assert set(decrypted) == shown
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    for field in PERSON_FIELDS:
        assert f'"registrations_person"."{field}"' not in sql, field
    assert '"registrations_registration"."comment"' not in sql


def test_the_identity_step_loads_the_identity_it_shows(staff_client, store, staff, decrypted):
    registration = make_complete_draft(store=store, created_by=staff)
    decrypted.clear()
    page = staff_client.get(url("counter-identity", registration)).content.decode()
    assert CUSTOMER["name_en"] in page and CUSTOMER["address"] in page
    assert {"Person.name_en", "Person.address", "Person.document_number"} <= set(decrypted)


# Viewing is audited


def test_opening_the_identity_step_and_the_record_page_are_audited(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    staff_client.get(url("counter-identity", registration))
    staff_client.get(url("counter-record", registration))
    viewed = events(AuditEvent.Action.VIEWED)
    assert [event.details["page"] for event in viewed] == ["identity", "record"]
    assert all(event.registration_reference == registration.reference for event in viewed)


# Discarding and purging drafts


def test_discarding_a_draft_removes_it_with_its_people_and_files(
    staff_client, store, staff, private_storage, django_capture_on_commit_callbacks
):
    registration = make_complete_draft(store=store, created_by=staff)
    make_document_copy(registration, kind="representative")
    assert len(stored_names()) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(url("counter-discard", registration), {"confirm": "discard"})
    assert response.url == reverse("home")
    assert not Registration.objects.filter(pk=registration.pk).exists()
    assert not Person.objects.exists()
    assert not DocumentCopy.objects.exists()
    assert stored_names() == set()
    [event] = events(AuditEvent.Action.DRAFT_DISCARDED)
    assert event.details == {"reason": "discarded"}


def test_a_submitted_record_cannot_be_discarded(staff_client, store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    staff_client.post(url("counter-discard", registration), {"confirm": "discard"})
    assert Registration.objects.filter(pk=registration.pk).exists()
    response = staff_client.get(url("counter-discard", registration), follow=True)
    assert response.redirect_chain[-1][0] == url("counter-record", registration)
    assert "Only a draft can be discarded." in response.content.decode()
    assert 'id="link-discard"' not in response.content.decode()


def test_discard_this_draft_asks_for_a_confirmation_before_deleting(staff_client, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    discard = url("counter-discard", registration)
    for name in ("counter-record", "counter-materials"):
        page = staff_client.get(url(name, registration)).content.decode()
        assert f'href="{discard}" id="link-discard"' in page, name

    page = staff_client.get(discard).content.decode()
    assert "Discard this draft?" in page
    assert "This cannot be undone." in page
    assert 'name="confirm" value="discard"' in page
    assert f'href="{url("counter-identity", registration)}" id="link-keep"' in page
    assert Registration.objects.filter(pk=registration.pk).exists()

    response = staff_client.post(discard)
    assert response.status_code == 200, "a post without the confirmation only asks"
    assert "Discard this draft?" in response.content.decode()
    assert Registration.objects.filter(pk=registration.pk).exists()
    assert not events(AuditEvent.Action.DRAFT_DISCARDED)

    response = staff_client.post(discard, {"confirm": "discard"}, follow=True)
    assert "Draft discarded." in response.content.decode()
    assert not Registration.objects.filter(pk=registration.pk).exists()


def _age(registration: Registration, days: int) -> None:
    Registration.objects.filter(pk=registration.pk).update(
        updated_at=timezone.now() - datetime.timedelta(days=days)
    )


def test_purge_expired_deletes_stale_drafts_only(
    store, staff, private_storage, capsys, django_capture_on_commit_callbacks
):
    stale = make_complete_draft(store=store, created_by=staff)
    recent = make_complete_draft(store=store, created_by=staff)
    old_pending = make_registration(store=store, created_by=staff, status="pending")
    _age(stale, 8)
    _age(recent, 6)
    _age(old_pending, 30)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_expired")
    assert "stale drafts (untouched for more than 7 days): 1 deleted" in capsys.readouterr().out
    assert set(Registration.objects.values_list("pk", flat=True)) == {recent.pk, old_pending.pk}
    assert not Person.objects.filter(pk=stale.customer_id).exists()
    assert stored_names() == set(DocumentCopy.objects.values_list("stored_name", flat=True))
    [event] = events(AuditEvent.Action.DRAFT_DISCARDED)
    assert event.details == {"reason": "stale"}
    assert event.registration_reference == stale.reference
    assert event.actor is None


def test_purge_expired_dry_run_counts_and_deletes_nothing(store, staff, capsys):
    stale = make_complete_draft(store=store, created_by=staff)
    _age(stale, 8)
    call_command("purge_expired", "--dry-run")
    out = capsys.readouterr().out
    assert "1 would be deleted" in out
    assert Registration.objects.filter(pk=stale.pk).exists()
    assert not events(AuditEvent.Action.DRAFT_DISCARDED)


def test_purge_expired_removes_files_no_record_names_once_past_the_grace(
    store, staff, private_storage, capsys
):
    registration = make_complete_draft(store=store, created_by=staff)
    kept = registration.documents.get().stored_name
    orphan = "ab" * 16
    put_stored(orphan, b"ciphertext left by a rolled-back upload")
    # Just written: it may be an upload whose row is about to commit.
    call_command("purge_expired")
    assert "orphaned document files: 0 deleted" in capsys.readouterr().out
    assert stored_names() == {kept, orphan}
    later = timezone.now() + datetime.timedelta(hours=2)
    with mock.patch("django.utils.timezone.now", return_value=later):
        call_command("purge_expired")
    assert "orphaned document files: 1 deleted" in capsys.readouterr().out
    assert stored_names() == {kept}
    assert events(AuditEvent.Action.PURGED)[0].details["count"] == 1


def test_the_stored_copy_of_a_png_is_not_the_png(store, staff, private_storage):
    registration = make_complete_draft(store=store, created_by=staff)
    stored = stored_bytes(registration.documents.get().stored_name)
    assert PNG not in stored
    assert upload().name == "hkid.png"


def test_the_customer_chooses_the_language_of_their_messages_at_the_identity_step(staff_client):
    """Offered in the counter's language at first; the choice is kept and the submission's
    message to the customer is written in it."""
    registration = walk_to_identity(staff_client)
    page = staff_client.get(url("counter-identity", registration), HTTP_ACCEPT_LANGUAGE="zh-hant")
    assert page.context["form"]["notice_language"].value() == "zh-hant"
    page = staff_client.get(url("counter-identity", registration), HTTP_ACCEPT_LANGUAGE="en")
    assert page.context["form"]["notice_language"].value() == "en"

    response = staff_client.post(
        url("counter-identity", registration), identity_form(notice_language="zh-hant")
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.notice_language == "zh-hant"
    assert {n.language for n in registration.notifications.all()} == {"zh-hant"}
    [saved] = events(AuditEvent.Action.DRAFT_SAVED)[-1:]
    assert "notice_language" in saved.fields
