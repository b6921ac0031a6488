"""Identity consistency: a document number already on other registrations brings their name and
date of birth with it. A disagreement stops the counter at the identity step (in the user's
language) until the customer confirms the details; the submission is then flagged, and the
supervisor must say they checked the discrepancy before approving."""

import datetime
import json

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone, translation

from registrations import roles
from registrations.forms.counter import DISCREPANCY_MESSAGES
from registrations.forms.review import DecisionForm
from registrations.labels import reason_label
from registrations.models import AuditEvent, ReasonCode, Registration
from registrations.services import (
    identity_discrepancy,
    registration_decide,
    registration_submit,
)
from registrations.services.counter.rules import english_name_key, identity_values_agree
from tests.factories import (
    CUSTOMER,
    identity_form,
    make_approved,
    make_complete_draft,
    make_document_copy,
    make_person,
    make_registration,
    make_returned,
    make_store,
    make_user,
    url,
    walk_to_identity,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

HKID = "A1234563"  # the factories' customer: CHAN Tai Man, 陳大文𠮷, born 1990-05-17


def discrepancy_of(**typed) -> tuple[list[str], list[str]]:
    values = {
        "document_type": "hkid",
        "document_number": HKID,
        "name_en": CUSTOMER["name_en"],
        "name_zh": CUSTOMER["name_zh"],
        "date_of_birth": datetime.date(1990, 5, 17),
        **typed,
    }
    found = identity_discrepancy(**values)
    return found.fields, found.references


# The comparison ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    ["CHAN Tai Man", "chan tai man", "  CHAN   Tai  Man ", "Tai Man CHAN", "TAI MAN, CHAN"],
)
def test_english_names_agree_whatever_the_case_spacing_or_order_of_the_words(other):
    assert identity_values_agree("name_en", "CHAN Tai Man", other)


@pytest.mark.parametrize(
    "other", ["CHAN Tai Ming", "CHAN Tai", "CHAN Tai Man Peter", "CHEN Tai Man"]
)
def test_english_names_with_another_word_or_letter_disagree(other):
    assert not identity_values_agree("name_en", "CHAN Tai Man", other)


def test_the_english_name_key_ignores_case_spaces_and_order():
    assert english_name_key("Tai  MAN chan") == english_name_key("CHAN Tai Man")


def test_chinese_names_are_compared_character_for_character():
    assert identity_values_agree("name_zh", "陳𠮷", "陳𠮷")
    assert not identity_values_agree("name_zh", "陳𠮷", "陳吉")  # 𠮷 is not 吉
    assert not identity_values_agree("name_zh", "陳大文", "陈大文")  # traditional, simplified


def test_dates_of_birth_are_compared_exactly():
    day = datetime.date(1990, 5, 17)
    assert identity_values_agree("date_of_birth", day, datetime.date(1990, 5, 17))
    assert not identity_values_agree("date_of_birth", day, datetime.date(1990, 5, 18))


@pytest.mark.parametrize("field", ["name_en", "name_zh", "date_of_birth"])
def test_a_field_is_compared_only_where_both_sides_have_a_value(field):
    assert identity_values_agree(field, "", "CHAN")
    assert identity_values_agree(field, None, datetime.date(1990, 5, 17))


def test_the_rule_names_the_fields_and_references_that_disagree(store, staff, supervisor):
    other = make_approved(store=store, created_by=staff, reviewer=supervisor)
    assert discrepancy_of() == ([], [])
    assert discrepancy_of(name_en="tai man chan") == ([], [])
    assert discrepancy_of(name_en="WONG Siu Ming", date_of_birth=datetime.date(1991, 1, 1)) == (
        ["name_en", "date_of_birth"],
        [other.reference],
    )
    assert discrepancy_of(name_zh="陳大文吉") == (["name_zh"], [other.reference])
    # Blank on this side: nothing to compare.
    assert discrepancy_of(name_zh="", date_of_birth=None) == ([], [])


def test_the_rule_reads_submitted_registrations_of_every_store_with_their_data_kept(
    store, other_store, staff, supervisor
):
    # Another store's pending record counts; drafts, purged records and itself do not.
    elsewhere = make_registration(store=other_store, created_by=staff, status="pending")
    make_complete_draft(store=store, created_by=staff)
    purged = make_approved(store=store, created_by=staff, reviewer=supervisor)
    Registration.objects.filter(pk=purged.pk).update(purged_at=timezone.now())
    assert discrepancy_of(name_en="WONG Siu Ming") == (["name_en"], [elsewhere.reference])
    assert discrepancy_of(name_en="WONG Siu Ming", exclude_pk=elsewhere.pk) == ([], [])
    # Another document: no candidate at all.
    assert discrepancy_of(document_number="K1234560", name_en="WONG Siu Ming") == ([], [])


# At the identity step ----------------------------------------------------------------------------


def _identity_stop(client, registration, **typed):
    response = client.post(url("counter-identity", registration), identity_form(**typed))
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_mismatch_stops_the_identity_step_beside_the_fields_in_the_users_language(
    client, staff, store, supervisor, language
):
    make_approved(store=store, created_by=staff, reviewer=supervisor)
    client.force_login(staff)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    registration = walk_to_identity(client)
    response = _identity_stop(client, registration, name_en="WONG Siu Ming", name_zh="陳𠮷")
    form = response.context["form"]
    page = response.content.decode()
    with translation.override(language):
        assert f'lang="{language}"' in page
        assert form.errors["name_en"] == [str(DISCREPANCY_MESSAGES["name_en"])]
        assert form.errors["name_zh"] == [str(DISCREPANCY_MESSAGES["name_zh"])]
        assert "date_of_birth" not in form.errors
        summary = " ".join(form.non_field_errors())
        assert str(form.fields["name_en"].label) in summary
        assert "discrepancy_confirmed" in form.errors
    # The message is next to the field, the summary above the form, the confirmation shown.
    assert 'id="form-errors"' in page
    assert 'id="div_id_name_en"' in page and "is-invalid" in page
    assert '<div id="discrepancy-confirm" class="alert alert-warning pb-0">' in page
    # What was typed is kept on the page; nothing was saved or submitted.
    assert 'value="WONG Siu Ming"' in page and 'value="陳𠮷"' in page
    registration.refresh_from_db()
    assert registration.status == Registration.Status.DRAFT
    assert registration.customer.name_en == ""


def test_without_a_mismatch_the_confirmation_stays_hidden(staff_client, store, staff, supervisor):
    make_approved(store=store, created_by=staff, reviewer=supervisor)
    registration = walk_to_identity(staff_client)
    page = staff_client.get(url("counter-identity", registration)).content.decode()
    assert '<div id="discrepancy-confirm" class="alert alert-warning pb-0" hidden>' in page
    response = staff_client.post(
        url("counter-identity", registration), identity_form(name_en="tai man CHAN")
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == Registration.Status.PENDING
    assert registration.discrepancy_fields == []


def test_a_save_with_a_mismatch_stops_too_and_the_confirmation_lets_it_through(
    staff_client, store, staff, supervisor
):
    make_approved(store=store, created_by=staff, reviewer=supervisor)
    registration = walk_to_identity(staff_client)
    _identity_stop(staff_client, registration, name_en="WONG Siu Ming", action="save")
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(name_en="WONG Siu Ming", action="save", discrepancy_confirmed="on"),
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.customer.name_en == "WONG Siu Ming"


def test_a_confirmed_mismatch_is_submitted_flagged_and_audited_by_name(
    staff_client, store, staff, supervisor
):
    other = make_approved(store=store, created_by=staff, reviewer=supervisor)
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(
            name_en="WONG Siu Ming", date_of_birth="1991-02-03", discrepancy_confirmed="on"
        ),
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == Registration.Status.PENDING
    assert registration.discrepancy_fields == ["name_en", "date_of_birth"]
    assert registration.discrepancy_references == [other.reference]
    event = AuditEvent.objects.get(
        action="submitted", registration_reference=registration.reference
    )
    assert event.details["discrepancy_fields"] == ["name_en", "date_of_birth"]
    assert event.details["discrepancy_references"] == [other.reference]
    text = json.dumps(event.details, ensure_ascii=False) + " ".join(event.fields)
    for value in ("WONG", "Siu", "1991", HKID, "CHAN", "陳"):
        assert value not in text


def test_a_corrected_record_is_resubmitted_without_the_flag(store, staff, supervisor):
    other = make_approved(store=store, created_by=staff, reviewer=supervisor)
    returned = make_returned(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        customer=make_person(name_en="WONG Siu Ming"),
        reason_code=ReasonCode.CONTRADICTS_EXISTING,
        discrepancy_fields=["name_en"],
        discrepancy_references=[other.reference],
    )
    make_document_copy(returned)
    # Resubmitted as it was: still flagged.
    registration_submit(registration=returned, actor=staff, declaration_accepted=True)
    returned.refresh_from_db()
    assert returned.discrepancy_fields == ["name_en"]
    event = AuditEvent.objects.filter(action="resubmitted").latest("id")
    assert event.details["discrepancy_fields"] == ["name_en"]

    # Returned again and corrected at the counter: the flag is cleared.
    registration_decide(
        registration=returned,
        reviewer=supervisor,
        outcome="returned",
        reason_code=ReasonCode.CONTRADICTS_EXISTING,
    )
    client = Client()
    client.force_login(staff)
    response = client.post(
        url("counter-identity", returned), identity_form(name_en=CUSTOMER["name_en"])
    )
    assert response.status_code == 302
    returned.refresh_from_db()
    assert returned.status == Registration.Status.PENDING
    assert returned.discrepancy_fields == [] and returned.discrepancy_references == []
    event = AuditEvent.objects.filter(action="resubmitted").latest("id")
    assert "discrepancy_fields" not in event.details
    assert {"discrepancy_fields", "discrepancy_references"} <= set(event.fields)


# The supervisor ----------------------------------------------------------------------------------


@pytest.fixture
def flagged(store, other_store, staff, supervisor):
    """A pending record whose name differs from one registration of the supervisor's store and
    one of a store they do not supervise."""
    mine = make_approved(store=store, created_by=staff, reviewer=supervisor)
    far = make_store(code="TST1", name="Tsim Sha Tsui")
    far_staff = make_user(roles.COUNTER_STAFF, stores=[far])
    theirs = make_approved(store=far, created_by=far_staff, reviewer=supervisor)
    references = sorted([mine.reference, theirs.reference])
    registration = make_registration(
        store=store,
        created_by=staff,
        status="pending",
        customer=make_person(name_en="WONG Siu Ming"),
        discrepancy_fields=["name_en"],
        discrepancy_references=references,
    )
    return registration, mine, theirs


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client


def test_the_queue_marks_a_flagged_record_with_a_badge(supervisor_client, flagged, store, staff):
    registration = flagged[0]
    plain = make_registration(store=store, created_by=staff, status="pending")
    page = supervisor_client.get("/review/").content.decode()
    row = page[
        page.index(registration.reference) : page.index("</tr>", page.index(registration.reference))
    ]
    assert "discrepancy-badge" in row and "details differ" in row
    plain_row = page[page.index(plain.reference) : page.index("</tr>", page.index(plain.reference))]
    assert "discrepancy-badge" not in plain_row


def test_the_record_shows_a_warning_naming_the_fields_and_the_other_registrations(
    supervisor_client, flagged
):
    registration, mine, theirs = flagged
    page = supervisor_client.get(url("review-detail", registration)).content.decode()
    panel = page[
        page.index('id="discrepancy"') : page.index("</section>", page.index('id="discrepancy"'))
    ]
    assert "Name in English" in panel
    # A link to the registration the supervisor may open, the reference alone for the other.
    assert f'href="/review/{mine.reference}/"' in panel
    assert theirs.reference in panel and f'href="/review/{theirs.reference}/"' not in panel
    assert 'name="discrepancy_checked"' in page


def test_a_record_without_a_flag_has_no_panel_and_no_check_to_tick(supervisor_client, store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    page = supervisor_client.get(url("review-detail", registration)).content.decode()
    assert 'id="discrepancy"' not in page
    assert 'name="discrepancy_checked"' not in page


def _decide(client, registration, **data):
    return client.post(
        url("review-decide", registration),
        {"submitted_at": registration.submitted_at.isoformat(), "comment": "", **data},
    )


def test_approving_a_flagged_record_needs_the_discrepancy_checked(supervisor_client, flagged):
    registration = flagged[0]
    response = _decide(supervisor_client, registration, outcome="approved")
    assert response.status_code == 400
    form = response.context["decision_form"]
    assert "discrepancy_checked" in form.errors
    assert 'id="id_discrepancy_checked"' in response.content.decode()
    registration.refresh_from_db()
    assert registration.status == Registration.Status.PENDING
    assert not AuditEvent.objects.filter(action="approved").exists()

    response = _decide(
        supervisor_client, registration, outcome="approved", discrepancy_checked="on"
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == Registration.Status.APPROVED
    event = AuditEvent.objects.get(action="approved", registration_reference=registration.reference)
    assert event.details["discrepancy_checked"] is True


def test_the_service_refuses_an_unchecked_approval_of_a_flagged_record(flagged, supervisor):
    with pytest.raises(ValidationError) as refused:
        registration_decide(registration=flagged[0], reviewer=supervisor, outcome="approved")
    assert "discrepancy_checked" in refused.value.message_dict


def test_returning_a_flagged_record_needs_no_check_and_takes_the_new_reason(
    supervisor_client, flagged
):
    registration = flagged[0]
    response = _decide(
        supervisor_client,
        registration,
        outcome="returned",
        reason_code=ReasonCode.CONTRADICTS_EXISTING,
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == Registration.Status.RETURNED
    assert registration.reason_code == "contradicts_existing"


def test_the_new_reason_code_is_offered_and_labelled_everywhere_reasons_show():
    assert ReasonCode.CONTRADICTS_EXISTING.value in dict(
        DecisionForm().fields["reason_code"].choices
    )
    for language in ("en", "zh-hant"):
        with translation.override(language):
            label = str(ReasonCode.CONTRADICTS_EXISTING.label)
            assert reason_label("contradicts_existing") == label
            assert reason_label("contradicts_existing", action="returned") == label
    with translation.override("en"):
        assert reason_label("contradicts_existing") == (
            "Information contradicts an existing registration"
        )


def test_the_identity_step_comparing_with_other_registrations_is_an_audited_search(
    staff_client, store, staff, supervisor
):
    """Saving the step decrypts other customers' names to compare: a search in the log, naming
    the records compared and never a value typed; a document nobody else holds reads nothing."""
    other = make_approved(store=store, created_by=staff, reviewer=supervisor)
    registration = walk_to_identity(staff_client)
    _identity_stop(staff_client, registration, name_en="WONG Siu Ming", name_zh="陳𠮷")
    [search] = AuditEvent.objects.filter(
        action=AuditEvent.Action.SEARCHED, details__purpose="identity_step"
    )
    assert search.registration_reference == registration.reference
    assert search.details["references"] == [other.reference]
    assert search.details["discrepancy_fields"] == ["name_en", "name_zh"]
    assert "WONG" not in str(search.details) and "陳" not in str(search.details)

    fresh = walk_to_identity(staff_client)
    staff_client.post(
        url("counter-identity", fresh),
        identity_form(document_number="K123456(0)", action="save"),
    )
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.SEARCHED,
        details__purpose="identity_step",
        registration_reference=fresh.reference,
    ).exists()
