"""The jurisdiction's rules at submit: per-person limits, minors, companies, duplicate SIMs."""

import dataclasses
import datetime
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connections
from django.utils import timezone

from registrations import selectors, services
from registrations.models import AuditEvent, DocumentCopy, Person, Registration
from tests.factories import (
    CUSTOMER,
    VALID_EID,
    VALID_ICCID,
    identity_form,
    make_approved,
    make_complete_draft,
    make_decided,
    make_person,
    make_registration,
    make_returned,
    materials_form,
    start_draft,
    upload,
    url,
    walk_to_identity,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def years_ago(years: int, days: int = 0) -> datetime.date:
    today = timezone.localdate()
    return today.replace(year=today.year - years) - datetime.timedelta(days=days)


def hold_active_sims(store, staff, count: int, *, plan: str = "prepaid", **person) -> None:
    """`count` active registrations (pending) for the test customer."""
    for _ in range(count):
        make_registration(
            store=store,
            created_by=staff,
            status="pending",
            plan=plan,
            customer=make_person(**person),
        )


def page_of(response) -> str:
    return response.content.decode()


# The per-person limit


def test_an_eleventh_prepaid_sim_is_refused_saying_how_many_are_active(staff_client, store, staff):
    hold_active_sims(store, staff, 10)
    registration = walk_to_identity(staff_client)
    response = staff_client.post(url("counter-identity", registration), identity_form())
    assert response.status_code == 200
    assert "This customer already holds 10 active prepaid SIMs; the limit is 10." in page_of(
        response
    )
    assert "not submitted" in page_of(response)
    form = response.context["form"]
    assert form["name_en"].value() == CUSTOMER["name_en"]
    assert form["address"].value() == CUSTOMER["address"]
    registration.refresh_from_db()
    assert registration.status == "draft"
    assert registration.customer.name_en == CUSTOMER["name_en"], "the draft keeps the input"
    assert registration.iccid == VALID_ICCID, "and what earlier steps saved"
    assert registration.documents.filter(kind="identity").exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SUBMITTED).exists()


def test_the_tenth_prepaid_sim_is_accepted(staff_client, store, staff):
    hold_active_sims(store, staff, 9)
    registration = walk_to_identity(staff_client)
    response = staff_client.post(url("counter-identity", registration), identity_form())
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == "pending"


def test_the_limit_finds_the_person_however_the_number_was_typed(store, staff):
    hold_active_sims(store, staff, 10, document_number="A1234563")
    draft = make_complete_draft(
        store=store, created_by=staff, customer=make_person(document_number="a123456(3)")
    )
    with pytest.raises(ValidationError, match="already holds 10 active"):
        services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)


def test_rejected_terminated_and_draft_registrations_do_not_count(store, staff, supervisor):
    hold_active_sims(store, staff, 9)
    for status in ("rejected", "terminated"):
        make_registration(
            store=store,
            created_by=staff,
            status=status,
            reviewer=supervisor,
            decided_at=timezone.now(),
            reason_code="other",
            terminated_at=timezone.now() if status == "terminated" else None,
        )
    make_complete_draft(store=store, created_by=staff)
    draft = make_complete_draft(store=store, created_by=staff)
    services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    draft.refresh_from_db()
    assert draft.status == "pending"


def test_service_plans_have_no_limit(store, staff):
    hold_active_sims(store, staff, 10)
    hold_active_sims(store, staff, 30, plan="service_plan")
    draft = make_complete_draft(store=store, created_by=staff, plan="service_plan")
    services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    draft.refresh_from_db()
    assert draft.status == "pending"


def _company(**overrides) -> Person:
    return make_person(
        kind="company",
        document_type="business_registration",
        document_number="12345678",
        date_of_birth=None,
        nationality="",
        **overrides,
    )


def _responsible_person() -> Person:
    return make_person(
        name_en="LEE Responsible", date_of_birth=years_ago(40), document_number="Z683365A"
    )


def test_a_company_may_hold_25_prepaid_sims_not_26(store, staff):
    for _ in range(24):
        make_registration(store=store, created_by=staff, status="pending", customer=_company())
    twenty_fifth = make_complete_draft(
        store=store, created_by=staff, customer=_company(), representative=_responsible_person()
    )
    services.registration_submit(registration=twenty_fifth, actor=staff, declaration_accepted=True)
    twenty_sixth = make_complete_draft(
        store=store, created_by=staff, customer=_company(), representative=_responsible_person()
    )
    with pytest.raises(ValidationError) as excinfo:
        services.registration_submit(
            registration=twenty_sixth, actor=staff, declaration_accepted=True
        )
    assert "This company already holds 25 active prepaid SIMs; the limit is 25." in str(
        excinfo.value
    )


def test_a_returned_record_does_not_count_against_itself(store, staff, supervisor):
    hold_active_sims(store, staff, 9)
    returned = make_returned(
        store=store, created_by=staff, reviewer=supervisor, reason_code="other"
    )
    DocumentCopy.objects.create(
        registration=returned,
        kind="identity",
        stored_name="0" * 32,
        content_type="image/png",
        size=1,
        uploaded_by=staff,
    )
    services.registration_submit(registration=returned, actor=staff, declaration_accepted=True)
    returned.refresh_from_db()
    assert returned.status == "pending"


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_at_the_limit_let_only_one_through(store, staff):
    hold_active_sims(store, staff, 9)
    drafts = [make_complete_draft(store=store, created_by=staff) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def submit(draft: Registration) -> None:
        try:
            barrier.wait()
            services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
            outcomes.append("submitted")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        except Exception as exc:  # a crash must fail the test, not hang it
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(draft,)) for draft in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == [
        "This customer already holds 10 active prepaid SIMs; the limit is 10.",
        "submitted",
    ]
    active = Registration.objects.filter(status__in=Registration.ACTIVE_STATUSES, plan="prepaid")
    holder = selectors.registration_list_by_document(
        document_type="hkid", document_number="A1234563", queryset=active
    )
    assert len(holder) == 10


# Minors and companies


def test_an_under_16_customer_without_a_confirming_adult_is_refused_and_input_kept(
    staff_client,
):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(date_of_birth=years_ago(15).isoformat()),
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "The customer is under 16: enter the name of the confirming adult." in str(
        errors["representative_name_en"]
    )
    assert (
        "Upload a photo or scan of the confirming adult's identity document."
        in (errors["representative_copy"])
    )
    form = response.context["form"]
    assert form["name_en"].value() == CUSTOMER["name_en"]
    assert form["date_of_birth"].value() == years_ago(15).isoformat()
    registration.refresh_from_db()
    assert registration.status == "draft"


def _adult(**overrides) -> dict:
    values = {
        "representative_name_en": "CHAN Ka Yan",
        "representative_name_zh": "陳家欣",
        "representative_document_type": "hkid",
        "representative_document_number": "Z683365(A)",
        "representative_date_of_birth": years_ago(45).isoformat(),
        "representative_copy": upload(),
    }
    values.update(overrides)
    return {key: value for key, value in values.items() if value is not None}


def test_a_confirming_adult_under_18_is_refused(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(
            date_of_birth=years_ago(15).isoformat(),
            **_adult(representative_date_of_birth=years_ago(17).isoformat()),
        ),
    )
    assert "The confirming adult must be 18 or over." in str(
        response.context["form"].errors["representative_date_of_birth"]
    )
    # The adult's copy was good: it is kept for the next attempt.
    assert registration.documents.filter(kind="representative").exists()
    assert "A copy is on file" in page_of(response)


def test_an_under_16_customer_with_an_adult_and_their_document_is_submitted(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(date_of_birth=years_ago(15).isoformat(), **_adult()),
    )
    assert response.status_code == 302, response.context["form"].errors
    registration.refresh_from_db()
    assert registration.status == "pending"
    adult = registration.representative
    assert adult.name_en == "CHAN Ka Yan"
    assert adult.document_number == "Z683365A"
    assert registration.documents.filter(kind="representative").count() == 1


def test_a_customer_who_turns_16_today_needs_no_adult(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(
        url("counter-identity", registration),
        identity_form(date_of_birth=years_ago(16).isoformat()),
    )
    assert response.status_code == 302


def test_an_adult_entered_for_a_customer_who_needs_none_is_not_kept(staff_client):
    registration = walk_to_identity(staff_client)
    response = staff_client.post(url("counter-identity", registration), identity_form(**_adult()))
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.representative is None
    assert not registration.documents.filter(kind="representative").exists()
    assert not Person.objects.exclude(pk=registration.customer_id).exists()


def test_a_company_needs_a_responsible_person_aged_18_or_over(staff_client):
    registration = walk_to_identity(
        staff_client,
        materials=materials_form(customer_kind="company", document_type="business_registration"),
    )
    company = identity_form(name_en="Chan Trading Limited", document_number="12345678-000-01-23-4")
    response = staff_client.post(url("counter-identity", registration), company)
    assert "A company needs a responsible person: enter their name." in str(
        response.context["form"].errors["representative_name_en"]
    )
    response = staff_client.post(
        url("counter-identity", registration),
        {**company, **_adult(representative_date_of_birth=years_ago(17).isoformat())},
    )
    assert "The responsible person must be 18 or over." in str(
        response.context["form"].errors["representative_date_of_birth"]
    )
    response = staff_client.post(
        url("counter-identity", registration),
        {**company, **_adult(representative_copy=None)},
    )
    assert response.status_code == 302, response.context["form"].errors
    registration.refresh_from_db()
    assert registration.status == "pending"
    assert registration.customer.document_number == "12345678"
    assert registration.representative.name_en == "CHAN Ka Yan"


def test_where_a_minor_registers_in_the_guardians_name_a_minor_is_refused(settings, store, staff):
    settings.SIMREG_POLICY = "ph"
    draft = make_complete_draft(
        store=store,
        created_by=staff,
        msisdn="+639171234567",
        customer=make_person(
            document_type="passport",
            document_number="P1234567",
            date_of_birth=years_ago(17),
            contact_number="+639171234568",
        ),
    )
    with pytest.raises(ValidationError) as excinfo:
        services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    assert "registered in the parent's or guardian's name" in str(excinfo.value)


# The same SIM cannot be registered twice


def test_a_duplicate_iccid_is_refused_at_step_one(staff_client, store, staff):
    make_registration(store=store, created_by=staff, status="pending", iccid=VALID_ICCID)
    registration = start_draft(staff_client)
    response = staff_client.post(url("counter-materials", registration), materials_form())
    assert "This ICCID is already in an active registration." in str(
        response.context["form"].errors["iccid"]
    )
    assert response.context["form"]["msisdn"].value() == "6123 4567"


def test_a_duplicate_eid_and_mobile_number_are_refused(staff_client, store, staff, supervisor):
    make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        sim_kind="esim",
        eid=VALID_EID,
        msisdn="+85261234567",
    )
    registration = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(sim_kind="esim", iccid="", eid=VALID_EID),
    )
    errors = response.context["form"].errors
    assert "This EID is already in an active registration." in str(errors["eid"])
    assert "This mobile number is already in an active registration." in str(errors["msisdn"])


def test_a_sim_registered_meanwhile_is_refused_at_submit(staff_client, store, staff):
    registration = walk_to_identity(staff_client)
    make_registration(store=store, created_by=staff, status="pending", iccid=VALID_ICCID)
    response = staff_client.post(url("counter-identity", registration), identity_form())
    assert "ICCID: This ICCID is already in an active registration." in page_of(response)
    registration.refresh_from_db()
    assert registration.status == "draft"


def test_the_database_backs_up_the_duplicate_check(monkeypatch, store, staff):
    make_registration(store=store, created_by=staff, status="pending", iccid=VALID_ICCID)
    draft = make_complete_draft(store=store, created_by=staff, iccid=VALID_ICCID)
    real = selectors.registration_active_clashes
    skipped: list[bool] = []

    def the_check_misses_it_once(**kwargs):
        # As if the other registration committed between the check and the write.
        if not skipped:
            skipped.append(True)
            return set()
        return real(**kwargs)

    monkeypatch.setattr(selectors, "registration_active_clashes", the_check_misses_it_once)
    with pytest.raises(ValidationError) as excinfo:
        services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    assert "This ICCID is already in an active registration." in str(excinfo.value)
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_a_terminated_sim_can_be_registered_again(store, staff, supervisor):
    make_decided(
        "terminated",
        store=store,
        created_by=staff,
        reviewer=supervisor,
        iccid=VALID_ICCID,
        terminated_at=timezone.now(),
    )
    draft = make_complete_draft(store=store, created_by=staff, iccid=VALID_ICCID)
    services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    draft.refresh_from_db()
    assert draft.status == "pending"


# Materials the policy asks for


@pytest.fixture
def policy_asking_for_proof_of_address(monkeypatch):
    from registrations import policy

    monkeypatch.setitem(
        policy.PROFILES,
        "hk",
        dataclasses.replace(policy.HONG_KONG, proof_of_address_required=True),
    )


@pytest.mark.usefixtures("policy_asking_for_proof_of_address")
def test_where_the_policy_asks_for_proof_of_address_step_one_needs_it(staff_client):
    registration = start_draft(staff_client)
    response = staff_client.post(url("counter-materials", registration), materials_form())
    assert (
        "Upload a photo or scan of the proof of address."
        in (response.context["form"].errors["proof_of_address"])
    )
    response = staff_client.post(
        url("counter-materials", registration),
        materials_form(identity_copy=None, proof_of_address=upload(name="bill.png")),
    )
    assert response.status_code == 302
    assert registration.documents.filter(kind="proof_of_address").count() == 1


def test_without_that_policy_there_is_no_proof_of_address_field(staff_client):
    registration = start_draft(staff_client)
    form = staff_client.get(url("counter-materials", registration)).context["form"]
    assert "proof_of_address" not in form.fields


def test_only_the_policys_document_types_are_offered_and_accepted(settings, staff_client):
    settings.SIMREG_POLICY = "ph"
    registration = start_draft(staff_client)
    form = staff_client.get(url("counter-materials", registration)).context["form"]
    assert [value for value, _label in form.fields["document_type"].choices] == [
        "passport",
        "business_registration",
    ]
    response = staff_client.post(url("counter-materials", registration), materials_form())
    assert "document_type" in response.context["form"].errors
