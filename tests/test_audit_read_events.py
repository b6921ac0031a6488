"""Every read is an event: each page that shows a record, a list of records or audit events writes
one audit event; the admin and the management commands offer no way around that."""

import io
import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import serializers
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from registrations.audit import audit_record
from registrations.models import AuditEvent, Person, Registration, Store
from tests.factories import (
    make_approved,
    make_complete_draft,
    make_person,
    make_registration,
    make_returned,
    make_user,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def new_events(since: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(id__gt=since).order_by("id"))


def last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


@pytest.fixture
def superuser(db):
    return make_user(None, is_superuser=True, is_staff=True, username="root")


# The counter's pages ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, status, page",
    [
        ("counter-materials", "draft", "materials"),
        ("counter-channel", "draft", "channel"),
        ("counter-identity", "draft", "identity"),
        ("counter-discard", "draft", "discard"),
        ("counter-record", "approved", "record"),
        ("counter-update", "approved", "update"),
        ("counter-terminate", "approved", "terminate"),
    ],
)
def test_each_counter_page_of_a_record_is_one_viewed_event(
    staff_client, store, staff, supervisor, name, status, page
):
    if status == "draft":
        registration = make_complete_draft(store=store, created_by=staff)
    else:
        registration = make_approved(store=store, created_by=staff, reviewer=supervisor)
    since = last_id()
    response = staff_client.get(reverse(name, args=[registration.reference]))
    assert response.status_code == 200
    [event] = new_events(since)
    assert (event.action, event.registration_reference) == ("viewed", registration.reference)
    assert event.details == {"page": page} and event.actor == staff


def test_the_page_asking_why_a_copy_is_opened_is_an_event_naming_the_copy(
    staff_client, store, staff
):
    registration = make_complete_draft(store=store, created_by=staff)
    copy = registration.documents.get()
    since = last_id()
    url = reverse("document-copy", args=[registration.reference, copy.pk])
    assert staff_client.get(url).status_code == 200
    [event] = new_events(since)
    assert event.action == "viewed" and event.registration_reference == registration.reference
    assert event.details == {"page": "document", "document": copy.pk, "kind": "identity"}


def test_the_receipt_is_one_receipt_viewed_event(staff_client, store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    since = last_id()
    assert staff_client.get(reverse("counter-receipt", args=[registration.reference])).status_code
    assert [(e.action, e.registration_reference) for e in new_events(since)] == [
        ("receipt_viewed", registration.reference)
    ]


def test_the_counter_home_lists_records_and_is_one_listed_event_naming_them(
    staff_client, store, staff, supervisor
):
    draft = make_complete_draft(store=store, created_by=staff)
    returned = make_returned(store=store, created_by=staff, reviewer=supervisor)
    since = last_id()
    page = staff_client.get("/").content.decode()
    assert draft.reference in page and returned.reference in page
    [event] = new_events(since)
    assert event.action == "listed" and event.details["view"] == "counter_home"
    assert sorted(event.details["references"]) == sorted([draft.reference, returned.reference])


def test_a_home_page_without_records_writes_no_list_event(client, supervisor, compliance):
    for user in (supervisor, compliance):
        client.force_login(user)
        since = last_id()
        assert client.get("/").status_code == 200
        assert [e.action for e in new_events(since)] == []


# The admin ----------------------------------------------------------------------------------------


def test_listing_audit_events_in_the_admin_is_an_event_naming_what_was_listed(
    client, superuser, store, staff, supervisor
):
    registration = make_approved(store=store, created_by=staff, reviewer=supervisor)
    shown = audit_record(actor=staff, action="viewed", registration=registration)
    client.force_login(superuser)
    since = last_id()
    url = reverse("admin:registrations_auditevent_changelist")
    page = client.get(url, {"q": "A123456(3)", "action": "viewed"}).content.decode()
    assert "A123456" in page  # the search box shows what was typed, nothing more
    client.get(url, {"action": "viewed"})
    searched, listed = new_events(since)
    assert searched.action == "listed" and searched.actor == superuser
    assert searched.details["parameters"] == ["action", "q"]
    assert "A123456" not in json.dumps(searched.details)  # a typed value is never recorded
    assert listed.details["view"] == "admin_audit_events"
    assert shown.pk in listed.details["events"]
    assert listed.details["references"] == [registration.reference]


def test_opening_an_audit_event_in_the_admin_is_an_event(client, superuser, store, staff):
    registration = make_complete_draft(store=store, created_by=staff)
    shown = audit_record(actor=staff, action="draft_saved", registration=registration)
    client.force_login(superuser)
    since = last_id()
    url = reverse("admin:registrations_auditevent_change", args=[shown.pk])
    assert client.get(url).status_code == 200
    [event] = new_events(since)
    assert event.action == "viewed" and event.actor == superuser
    assert event.details == {
        "view": "admin_audit_event",
        "event": shown.pk,
        "references": [registration.reference],
    }
    # Asking for an event that does not exist shows nothing and records nothing.
    since = last_id()
    client.get(reverse("admin:registrations_auditevent_change", args=[shown.pk + 1000]))
    assert new_events(since) == []


def test_the_admins_view_on_site_shortcut_is_not_served(client, superuser, store, staff):
    """It would turn a registration's id into the address of its page, unaudited."""
    registration = make_complete_draft(store=store, created_by=staff)
    content_type = ContentType.objects.get_for_model(Registration)
    client.force_login(superuser)
    response = client.get(f"/admin/r/{content_type.pk}/{registration.pk}/")
    assert response.status_code == 404
    assert registration.reference not in response.content.decode()
    assert registration.reference not in response.get("Location", "")


def test_the_admin_counts_the_records_that_keep_a_store_or_user_from_deletion(
    client, superuser, store, staff
):
    registration = make_complete_draft(store=store, created_by=staff)
    client.force_login(superuser)
    for url in (
        reverse("admin:registrations_store_delete", args=[store.pk]),
        reverse("admin:registrations_user_delete", args=[staff.pk]),
    ):
        page = client.get(url).content.decode()
        assert "Registrations: 1" in page, url
        assert registration.reference not in page, url


# dumpdata and loaddata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels, named",
    [
        ((), "registrations.Person"),
        (("registrations",), "registrations.Person"),
        (("registrations.Person",), "registrations.Person"),
        (("registrations.registration",), "registrations.Registration"),
    ],
)
def test_dumpdata_refuses_the_tables_holding_identity_data(store, staff, labels, named):
    make_complete_draft(store=store, created_by=staff)
    out = io.StringIO()
    with pytest.raises(CommandError, match="identity data") as refused:
        call_command("dumpdata", *labels, stdout=out)
    assert f"--exclude {named}" in str(refused.value)  # the way to leave it out
    assert out.getvalue() == ""


def test_dumpdata_of_other_tables_or_with_identity_excluded_works(store, staff):
    make_complete_draft(store=store, created_by=staff)
    out = io.StringIO()
    call_command("dumpdata", "registrations.Store", stdout=out)
    assert [row["fields"]["code"] for row in json.loads(out.getvalue())] == ["MK01"]
    excluded = [
        "registrations.Person",
        "registrations.Registration",
        "registrations.StatusChange",
        "registrations.PendingChange",
        "registrations.DocumentCopy",
        "registrations.Notification",
        "registrations.BreachRecord",
    ]
    out = io.StringIO()
    call_command("dumpdata", "registrations", exclude=excluded, stdout=out)
    dumped = {row["model"] for row in json.loads(out.getvalue())}
    assert "registrations.store" in dumped and "registrations.person" not in dumped
    assert "CHAN" not in out.getvalue()
    call_command("dumpdata", exclude=["registrations"], stdout=io.StringIO())


def test_loaddata_refuses_identity_data_and_loads_nothing(tmp_path, db):
    person = make_person(name_en="WONG Siu Fong")
    store = Store(pk=9999, code="TST9", name="Test")
    fixture = tmp_path / "people.json"
    fixture.write_text(serializers.serialize("json", [store, person]))
    Person.objects.filter(pk=person.pk).delete()
    with pytest.raises(CommandError, match="identity data"):
        call_command("loaddata", str(fixture), stdout=io.StringIO())
    assert not Person.objects.filter(pk=person.pk).exists()
    assert not Store.objects.filter(code="TST9").exists()  # the whole load rolled back

    call_command("loaddata", str(fixture), exclude=["registrations.Person"], stdout=io.StringIO())
    assert Store.objects.filter(code="TST9").exists()
    assert not Person.objects.filter(pk=person.pk).exists()
