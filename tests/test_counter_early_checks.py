"""Early checks at the identity step: as soon as the document number is typed, a small POST
answers with what the customer already holds against the per-person limit and any disagreement
with other registrations, for the page's script to show without reloading. Each check is an
audit event of a search that names no value typed."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from registrations import roles
from registrations.models import AuditEvent, Registration
from tests.factories import (
    CUSTOMER,
    make_approved,
    make_complete_draft,
    make_person,
    make_registration,
    make_user,
    url,
    walk_to_identity,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

TYPED = {
    "document_number": "a123456(3)",
    "name_en": CUSTOMER["name_en"],
    "name_zh": CUSTOMER["name_zh"],
    "date_of_birth": "1990-05-17",
}


def check(client, registration, **typed):
    return client.post(url("counter-identity-check", registration), {**TYPED, **typed})


def searches() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="searched").order_by("id"))


def hold(count: int, *, store, staff, supervisor, plan: str = "prepaid") -> None:
    """The factories' customer (HKID A123456(3)) holds `count` approved SIMs of this plan."""
    for _ in range(count):
        make_approved(store=store, created_by=staff, reviewer=supervisor, plan=plan)


def test_the_check_shows_the_active_sims_of_each_plan_against_the_limit(
    staff_client, store, staff, supervisor
):
    hold(3, store=store, staff=staff, supervisor=supervisor)
    hold(2, store=store, staff=staff, supervisor=supervisor, plan="service_plan")
    registration = walk_to_identity(staff_client)
    response = check(staff_client, registration)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Prepaid: 3 of 10" in " ".join(page.split())
    assert "2 (no limit)" in page
    assert 'id="identity-check-over-limit"' not in page
    assert 'id="identity-check-discrepancy"' not in page


@pytest.mark.parametrize(("held", "over"), [(9, False), (10, True)])
def test_the_check_warns_when_this_registration_would_go_over_the_limit(
    staff_client, store, staff, supervisor, held, over
):
    hold(held, store=store, staff=staff, supervisor=supervisor)
    registration = walk_to_identity(staff_client)
    page = check(staff_client, registration).content.decode()
    assert f"Prepaid: {held} of 10" in " ".join(page.split())
    assert ('id="identity-check-over-limit"' in page) is over


def test_the_check_shows_a_consistency_problem_by_field_name(
    staff_client, store, staff, supervisor
):
    make_approved(store=store, created_by=staff, reviewer=supervisor)
    registration = walk_to_identity(staff_client)
    page = check(staff_client, registration, name_en="WONG Siu Ming", name_zh="陳𠮷").content
    page = page.decode()
    assert 'id="identity-check-discrepancy"' in page
    assert 'data-discrepancy-fields="name_en name_zh"' in page
    assert "Name in English" in page and "Name in Chinese characters" in page
    # The counter is not shown the other registration's values or reference.
    assert "CHAN" not in page and "陳大文" not in page


def test_each_check_is_a_search_in_the_audit_without_any_value(
    staff_client, store, staff, supervisor
):
    other = make_approved(store=store, created_by=staff, reviewer=supervisor)
    registration = walk_to_identity(staff_client)
    check(staff_client, registration, name_en="WONG Siu Ming", date_of_birth="1991-02-03")
    [event] = searches()
    assert event.registration_reference == registration.reference
    assert event.details["purpose"] == "early_check"
    assert event.details["matches"] == 1
    assert event.details["active_sims"] == 1
    assert event.details["discrepancy_fields"] == ["name_en", "date_of_birth"]
    assert event.details["references"] == [other.reference]
    text = json.dumps(event.details, ensure_ascii=False) + event.user_agent + " ".join(event.fields)
    for value in ("WONG", "1991", "A123456", "1234563", "陳"):
        assert value not in text


def test_a_number_that_is_not_valid_gets_an_empty_answer_and_no_search(staff_client):
    registration = walk_to_identity(staff_client)
    for typed in ({"document_number": "A123456(4)"}, {"document_number": ""}, {}):
        response = staff_client.post(url("counter-identity-check", registration), typed)
        assert response.status_code == 200
        assert response.content == b""
    assert searches() == []


def test_bad_values_beside_a_valid_number_are_left_out_not_refused(staff_client):
    registration = walk_to_identity(staff_client)
    response = check(
        staff_client, registration, date_of_birth="31/02/1990", name_en="x" * 500, name_zh="\x00"
    )
    assert response.status_code == 200
    assert "Prepaid: 0 of 10" in " ".join(response.content.decode().split())


def test_a_body_too_large_gets_an_empty_answer(staff_client):
    registration = walk_to_identity(staff_client)
    response = check(staff_client, registration, address="x" * 5000)
    assert response.status_code == 200
    assert response.content == b""
    assert searches() == []


def test_the_check_takes_post_only_and_with_the_csrf_token(staff, store):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    registration = make_complete_draft(store=store, created_by=staff)
    assert client.get(url("counter-identity-check", registration)).status_code == 405
    assert check(client, registration).status_code == 403
    assert searches() == []


def test_other_stores_records_and_other_roles_are_refused(
    client, store, other_store, staff, supervisor
):
    theirs = make_complete_draft(
        store=other_store, created_by=make_user(roles.COUNTER_STAFF, stores=[other_store])
    )
    client.force_login(staff)
    assert check(client, theirs).status_code == 404
    mine = make_complete_draft(store=store, created_by=staff)
    client.force_login(supervisor)
    assert check(client, mine).status_code == 403
    client.logout()
    response = check(client, mine)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert searches() == []


def test_a_record_no_longer_at_the_counter_gets_an_empty_answer(staff_client, store, staff):
    pending = make_registration(store=store, created_by=staff, status="pending")
    response = check(staff_client, pending)
    assert response.status_code == 200 and response.content == b""
    assert searches() == []


def test_a_company_is_checked_against_the_company_limit(staff_client, store, staff, supervisor):
    company = {"kind": "company", "document_type": "business_registration"}
    number = "12345678"
    for _ in range(2):
        make_approved(
            store=store,
            created_by=staff,
            reviewer=supervisor,
            customer=make_person(**company, document_number=number, date_of_birth=None),
        )
    draft = make_complete_draft(
        store=store, created_by=staff, customer=make_person(**company, document_number="")
    )
    page = check(staff_client, draft, document_number=number, date_of_birth="").content.decode()
    assert "company already holds" in page
    assert "Prepaid: 2 of 25" in " ".join(page.split())


def test_the_identity_page_loads_the_check_script_and_its_address(staff_client):
    registration = walk_to_identity(staff_client)
    page = staff_client.get(url("counter-identity", registration)).content.decode()
    address = reverse("counter-identity-check", args=[registration.reference])
    assert f'data-check-url="{address}"' in page
    assert 'src="/static/registrations/early_check.js"' in page
    assert 'aria-live="polite"' in page
    # No inline script: the Content-Security-Policy allows this site's files only.
    assert "<script>" not in page
    assert Registration.objects.get(pk=registration.pk).status == "draft"
