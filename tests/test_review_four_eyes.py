"""The four-eyes rule: nobody decides a record whose identity or materials they entered or
changed at any point, nor a change to it, nor a change they asked for; looking is not touching."""

import importlib
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.urls import reverse

from registrations import roles, services
from registrations.models import PendingChange, Registration, RegistrationEditor
from tests.factories import (
    identity_form,
    make_approved,
    make_user,
    materials_form,
    walk_to_identity,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


@pytest.fixture
def both(store):
    """Counter staff and supervisor of the same store: the person the rule is about."""
    user = make_user(roles.COUNTER_STAFF, stores=[store], supervises=[store], username="both")
    user.groups.add(*make_user(roles.SUPERVISOR).groups.all())
    return user


@pytest.fixture
def both_client(both):
    client = Client()
    client.force_login(both)
    return client


def url(name: str, registration: Registration, *args) -> str:
    return reverse(name, args=[registration.reference, *args])


def decide_form(registration: Registration, **values) -> dict:
    registration.refresh_from_db()
    return {"submitted_at": registration.submitted_at.isoformat(), **values}


def submit(client, registration: Registration) -> None:
    response = client.post(url("counter-identity", registration), identity_form())
    assert response.status_code == 302, response.context["form"].errors
    registration.refresh_from_db()
    assert registration.status == "pending"


def assert_cannot_decide(client, user, registration: Registration) -> None:
    """Refused on the page (no buttons, a reason) and by the service, whatever is posted."""
    page = client.get(url("review-detail", registration)).content.decode()
    assert 'id="four-eyes"' in page and 'id="decision-form"' not in page
    assert "you entered, changed or submitted this record" in page
    response = client.post(
        url("review-decide", registration), decide_form(registration, outcome="approved")
    )
    assert response.status_code == 400
    with pytest.raises(ValidationError, match="Four-eyes"):
        services.registration_decide(registration=registration, reviewer=user, outcome="approved")
    registration.refresh_from_db()
    assert registration.status == "pending" and registration.reviewer is None


@pytest.mark.parametrize(
    "step, form",
    [
        ("counter-identity", lambda: identity_form(action="save", address="Flat 1, 2 Other Road")),
        ("counter-materials", lambda: materials_form(action="save", plan="service_plan")),
    ],
)
def test_a_supervisor_who_changed_a_colleagues_draft_cannot_approve_it(
    staff_client, both_client, both, staff, step, form
):
    """The reported case: edited the identity step of a colleague's draft, the colleague
    submitted, the editor approved it. Neither creator nor submitter, and still refused."""
    registration = walk_to_identity(staff_client)
    response = both_client.post(url(step, registration), form())
    assert response.status_code == 302
    submit(staff_client, registration)
    assert registration.created_by == staff and registration.submitted_by == staff

    assert_cannot_decide(both_client, both, registration)


def test_whoever_submitted_an_earlier_round_cannot_decide_the_resubmission(
    store, staff, staff_client, both_client, both
):
    registration = walk_to_identity(staff_client)
    response = both_client.post(url("counter-identity", registration), identity_form())
    assert response.status_code == 302
    supervisor = make_user(roles.SUPERVISOR, supervises=[store])
    services.registration_decide(
        registration=registration,
        reviewer=supervisor,
        outcome="returned",
        reason_code="materials_incomplete",
    )
    submit(staff_client, registration)
    assert registration.submitted_by == staff  # the row names the last submitter only

    assert_cannot_decide(both_client, both, registration)


def test_a_supervisor_who_only_looked_at_the_record_may_decide_it(staff_client, both_client, both):
    registration = walk_to_identity(staff_client)
    submit(staff_client, registration)
    # Every page of the record, the counter's included, and a reveal: reads, not changes.
    for name in ("counter-record", "counter-receipt", "review-detail"):
        assert both_client.get(url(name, registration)).status_code == 200, name
    both_client.post(
        url("review-reveal", registration), {"field": "address", "reason": "compare_with_copy"}
    )
    page = both_client.get(url("review-detail", registration)).content.decode()
    assert 'id="decision-form"' in page and 'id="four-eyes"' not in page

    response = both_client.post(
        url("review-decide", registration), decide_form(registration, outcome="approved")
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == "approved" and registration.reviewer == both


def change_page_blocks(client, registration: Registration, change: PendingChange) -> bool:
    page = client.get(url("review-detail", registration)).content.decode()
    form_action = url("review-decide-change", registration, change.pk)
    return form_action not in page and "four-eyes" in page


def test_the_requester_of_a_change_cannot_decide_it(store, staff, both_client, both):
    registration = make_approved(store=store, created_by=staff, reviewer=make_user())
    change = services.registration_request_change(
        registration=registration,
        actor=both,
        change=services.ChangeDetails(new_address="Flat 9, 10 Harbour Road"),
    )
    assert change_page_blocks(both_client, registration, change)
    response = both_client.post(
        url("review-decide-change", registration, change.pk), {"approve": "yes"}
    )
    assert response.status_code == 400
    with pytest.raises(ValidationError, match="Four-eyes"):
        services.pending_change_decide(change=change, reviewer=both, approve=True)
    change.refresh_from_db()
    assert change.status == "pending"


def test_whoever_entered_the_record_cannot_decide_a_change_to_it(
    store, staff, staff_client, both_client, both
):
    """A colleague asks for the change; the one who typed the identity in still may not decide."""
    registration = walk_to_identity(staff_client)
    assert both_client.post(url("counter-identity", registration), identity_form()).status_code
    registration.refresh_from_db()
    assert registration.status == "pending" and registration.submitted_by == both
    other = make_user(roles.SUPERVISOR, supervises=[store])
    services.registration_decide(registration=registration, reviewer=other, outcome="approved")
    change = services.registration_request_termination(
        registration=registration, actor=staff, reason="Customer leaves Hong Kong"
    )

    assert change_page_blocks(both_client, registration, change)
    with pytest.raises(ValidationError, match="Four-eyes"):
        services.pending_change_decide(change=change, reviewer=both, approve=True)
    # Another supervisor, who never touched it, decides it.
    services.pending_change_decide(change=change, reviewer=other, approve=True)
    registration.refresh_from_db()
    assert registration.status == "terminated"


def test_the_editors_are_written_with_the_save_and_only_once(staff_client, both_client, both):
    registration = walk_to_identity(staff_client)
    for _ in range(3):
        both_client.post(url("counter-identity", registration), identity_form(action="save"))
    assert list(registration.editors.values_list("user__username", flat=True).order_by("pk")) == [
        "counter",
        "both",
    ]
    # A save refused for bad input changed nothing, and notes no one.
    colleague = make_user(roles.COUNTER_STAFF, stores=[registration.store])
    client = Client()
    client.force_login(colleague)
    client.post(url("counter-identity", registration), identity_form(contact_number="12"))
    assert not registration.editors.filter(user=colleague).exists()


def test_the_migration_fills_in_the_editors_of_existing_records(
    store, staff, staff_client, both_client, both
):
    """Records saved before the table existed: their editors come from the rows and, for
    records still open to a decision, from the audit log's saves."""
    registration = walk_to_identity(staff_client)
    both_client.post(url("counter-identity", registration), identity_form(action="save"))
    submit(staff_client, registration)
    RegistrationEditor.objects.all().delete()

    migration = importlib.import_module("registrations.migrations.0013_registration_editors")
    # The function reads the connection's alias only; the test's transaction stays open.
    migration.fill_editors(apps, SimpleNamespace(connection=connection))

    assert set(registration.editors.values_list("user__username", flat=True)) == {
        "counter",
        "both",
    }
    with pytest.raises(ValidationError, match="Four-eyes"):
        services.registration_decide(registration=registration, reviewer=both, outcome="approved")
