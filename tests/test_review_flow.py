"""Supervisors: the queue, reveals, decisions with reasons, the four-eyes rule, pending changes."""

import datetime
import re
import threading

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registrations import roles, services
from registrations.models import AuditEvent, PendingChange, Registration, StatusChange
from tests.factories import (
    make_approved,
    make_complete_draft,
    make_document_copy,
    make_pending_change,
    make_person,
    make_registration,
    make_user,
)

pytestmark = pytest.mark.django_db


def pending(store, staff, **kwargs):
    return make_registration(store=store, created_by=staff, status="pending", **kwargs)


def approved(store, staff, reviewer, **kwargs):
    return make_approved(store=store, created_by=staff, reviewer=reviewer, **kwargs)


def decide_form(registration, **values):
    return {"submitted_at": registration.submitted_at.isoformat(), **values}


def test_the_queue_lists_pending_submissions_oldest_first(client, store, staff, supervisor):
    first, second = pending(store, staff), pending(store, staff)
    Registration.objects.filter(pk=first.pk).update(
        submitted_at=timezone.now() - timezone.timedelta(days=2)
    )
    make_registration(store=store, created_by=staff)  # a draft is not in the queue
    client.force_login(supervisor)
    page = client.get("/review/").content.decode()
    assert page.index(first.reference) < page.index(second.reference)
    assert "overdue" in page  # two days is past the review target


def test_the_queue_runs_a_constant_number_of_queries(client, store, staff, supervisor):
    client.force_login(supervisor)
    for _ in range(3):
        pending(store, staff)
    client.get("/review/")  # warm up session and permission caches
    with CaptureQueriesContext(connection) as few:
        assert client.get("/review/").status_code == 200
    for _ in range(30):
        pending(store, staff)
    with CaptureQueriesContext(connection) as many:
        assert client.get("/review/").status_code == 200
    assert len(many) == len(few)


@pytest.mark.usefixtures("private_storage")
def test_the_record_page_runs_a_constant_number_of_queries(client, store, staff, supervisor):
    """However long the record's history, and however many copies and changes it has."""
    registration = approved(store, staff, supervisor)

    def grow(n: int) -> None:
        for _ in range(n):
            StatusChange.objects.create(
                registration=registration,
                from_status="approved",
                to_status="approved",
                actor=staff,
            )
            make_document_copy(registration)
            make_pending_change(
                registration,
                requested_by=staff,
                new={"address": "Flat 1, 2 New Street, Sha Tin"},
                status=PendingChange.Status.REJECTED,
                decided_by=supervisor,
                decided_at=timezone.now(),
            )

    grow(1)
    client.force_login(supervisor)
    page = f"/review/{registration.reference}/"
    client.get(page)  # warm up session and permission caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(page).status_code == 200
    grow(15)
    with CaptureQueriesContext(connection) as many:
        response = client.get(page)
    assert response.status_code == 200
    assert response.content.decode().count("Flat 1, 2 New Street") == 0  # masked until revealed
    assert len(many) == len(few)


def test_the_queue_decrypts_nothing(client, store, staff, supervisor):
    """Even with keys that cannot read identity data, the queue renders in full."""
    pending(store, staff)
    client.force_login(supervisor)
    with override_settings(FIELD_ENCRYPTION_KEY=[Fernet.generate_key().decode()]):
        response = client.get("/review/")
    assert response.status_code == 200


def test_showing_the_queue_is_one_audit_event_naming_the_records(client, store, staff, supervisor):
    records = [pending(store, staff) for _ in range(3)]
    client.force_login(supervisor)
    before = AuditEvent.objects.count()
    client.get("/review/")
    assert AuditEvent.objects.count() == before + 1
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == "listed"
    assert sorted(event.details["references"]) == sorted(r.reference for r in records)


def test_filters_narrow_the_queue(client, store, other_store, staff, supervisor):
    here = pending(store, staff)
    there = pending(other_store, staff, sim_kind="esim", iccid="", eid="8" * 31 + "5")
    client.force_login(supervisor)
    page = client.get("/review/", {"store": other_store.pk}).content.decode()
    assert there.reference in page and here.reference not in page
    page = client.get("/review/", {"sim_kind": "physical"}).content.decode()
    assert here.reference in page and there.reference not in page


def test_a_supervisor_of_another_store_gets_404(client, store, staff):
    elsewhere = make_user(roles.SUPERVISOR, supervises=[])
    registration = pending(store, staff)
    client.force_login(elsewhere)
    assert client.get(f"/review/{registration.reference}/").status_code == 404
    response = client.post(
        f"/review/{registration.reference}/decide/", decide_form(registration, outcome="approved")
    )
    assert response.status_code == 404
    registration.refresh_from_db()
    assert registration.status == "pending"


def test_counter_staff_cannot_open_the_review_pages(client, store, staff):
    registration = pending(store, staff)
    client.force_login(staff)
    assert client.get("/review/").status_code == 403
    assert client.get(f"/review/{registration.reference}/").status_code == 403


def test_the_record_shows_identity_masked_until_revealed_with_a_reason(
    client, store, staff, supervisor
):
    registration = pending(store, staff)
    client.force_login(supervisor)
    page = client.get(f"/review/{registration.reference}/").content.decode()
    assert "A123***(*)" in page
    assert "A123456(3)" not in page and "Nathan Road" not in page and "91234567" not in page

    before = AuditEvent.objects.filter(action="revealed").count()
    response = client.post(
        f"/review/{registration.reference}/reveal/",
        {"field": "document_number", "reason": "compare_with_copy"},
    )
    assert "A123456(3)" in response.content.decode()
    assert "Nathan Road" not in response.content.decode()
    events = AuditEvent.objects.filter(action="revealed")
    assert events.count() == before + 1
    event = events.order_by("-id").first()
    assert event.reason == "compare_with_copy"
    assert event.fields == ["document_number"]
    assert event.registration_reference == registration.reference
    assert "A123456" not in repr(event.details) + event.reason


@pytest.mark.parametrize("reason", ["", "CHAN Tai Man asked, A1234563"])
def test_a_reveal_needs_a_coded_reason_and_free_text_never_reaches_the_audit_log(
    client, store, staff, supervisor, reason
):
    registration = pending(store, staff)
    client.force_login(supervisor)
    before = AuditEvent.objects.filter(action="revealed").count()
    response = client.post(
        f"/review/{registration.reference}/reveal/", {"field": "address", "reason": reason}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nathan Road" not in page
    assert "Choose why you need to see the full value." in page
    assert AuditEvent.objects.filter(action="revealed").count() == before
    assert "A1234563" not in repr(list(AuditEvent.objects.values("reason", "details")))
    # The refused form still showed the record: that showing is accounted for.
    last = AuditEvent.objects.order_by("-id").first()
    assert (last.action, last.details.get("after")) == ("viewed", "invalid_reveal")


def test_viewing_a_record_is_an_audit_event(client, store, staff, supervisor):
    registration = pending(store, staff)
    client.force_login(supervisor)
    client.get(f"/review/{registration.reference}/")
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.registration_reference) == ("viewed", registration.reference)


def test_approval_is_one_decision_with_one_audit_event(client, store, staff, supervisor):
    registration = pending(store, staff)
    client.force_login(supervisor)
    response = client.post(
        f"/review/{registration.reference}/decide/",
        decide_form(registration, outcome="approved", comment="All in order"),
    )
    assert response.status_code == 302
    registration.refresh_from_db()
    assert registration.status == "approved" and registration.reviewer == supervisor
    events = AuditEvent.objects.filter(
        action="approved", registration_reference=registration.reference
    )
    assert events.count() == 1
    assert "All in order" not in repr(events.get().details)
    assert registration.history.get().to_status == "approved"


@pytest.mark.parametrize("outcome", ["rejected", "returned"])
def test_reject_and_return_need_a_reason_code(client, store, staff, supervisor, outcome):
    registration = pending(store, staff)
    client.force_login(supervisor)
    response = client.post(
        f"/review/{registration.reference}/decide/",
        decide_form(registration, outcome=outcome, comment="Blurred photo"),
    )
    assert response.status_code == 400
    assert "Choose a reason" in response.content.decode()
    registration.refresh_from_db()
    assert registration.status == "pending"

    client.post(
        f"/review/{registration.reference}/decide/",
        decide_form(
            registration, outcome=outcome, reason_code="document_unreadable", comment="Blurred"
        ),
    )
    registration.refresh_from_db()
    assert registration.status == outcome
    assert registration.reason_code == "document_unreadable"
    assert registration.comment == "Blurred"
    event = AuditEvent.objects.get(action=outcome)
    assert event.reason == "document_unreadable"


def test_four_eyes_nobody_decides_a_record_they_created_or_submitted(client, store, staff):
    both = make_user(roles.COUNTER_STAFF, stores=[store])
    both.groups.add(*make_user(roles.SUPERVISOR).groups.all())
    both.supervised_stores.add(store)
    own = pending(store, both)
    client.force_login(both)
    page = client.get(f"/review/{own.reference}/").content.decode()
    assert "Four-eyes rule" in page and 'id="decision-form"' not in page
    response = client.post(f"/review/{own.reference}/decide/", decide_form(own, outcome="approved"))
    assert response.status_code == 400
    own.refresh_from_db()
    assert own.status == "pending"

    submitted_by_them = pending(store, staff, submitted_by=both)
    with pytest.raises(ValidationError, match="Four-eyes"):
        services.registration_decide(
            registration=submitted_by_them, reviewer=both, outcome="approved"
        )


def test_a_decision_on_a_stale_page_does_not_decide_a_newer_submission(store, staff, supervisor):
    registration = pending(store, staff)
    seen = registration.submitted_at
    Registration.objects.filter(pk=registration.pk).update(
        submitted_at=seen + timezone.timedelta(minutes=5)
    )
    with pytest.raises(services.DecisionConflict):
        services.registration_decide(
            registration=registration, reviewer=supervisor, outcome="approved", submitted_at=seen
        )


@pytest.mark.django_db(transaction=True)
def test_two_supervisors_deciding_at_once_store_exactly_one_decision(store, staff):
    first = make_user(roles.SUPERVISOR, supervises=[store])
    second = make_user(roles.SUPERVISOR, supervises=[store])
    registration = pending(store, staff)
    barrier = threading.Barrier(2)
    outcomes = {}

    def decide(reviewer, outcome):
        try:
            barrier.wait()
            services.registration_decide(
                registration=Registration.objects.get(pk=registration.pk),
                reviewer=reviewer,
                outcome=outcome,
                reason_code="" if outcome == "approved" else "document_unreadable",
            )
            outcomes[reviewer.pk] = "won"
        except services.DecisionConflict:
            outcomes[reviewer.pk] = "conflict"
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=decide, args=(first, "approved")),
        threading.Thread(target=decide, args=(second, "returned")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["conflict", "won"]
    registration.refresh_from_db()
    winner = first if outcomes[first.pk] == "won" else second
    assert registration.reviewer_id == winner.pk
    assert registration.history.count() == 1
    assert AuditEvent.objects.filter(action__in=["approved", "returned"]).count() == 1


def test_a_pending_update_shows_old_against_new_masked_and_applies_only_on_approval(
    client, store, staff, supervisor
):
    reviewer = make_user(roles.SUPERVISOR, supervises=[store])
    registration = approved(store, staff, reviewer)
    change = make_pending_change(
        registration,
        requested_by=staff,
        new={"address": "Flat 3B, 1 Queen's Road Central", "contact_number": "+85298765432"},
    )
    client.force_login(supervisor)
    page = client.get(f"/review/{registration.reference}/").content.decode()
    assert "•••• 4567" in page and "•••• 5432" in page
    assert "Queen" not in page
    registration.customer.refresh_from_db()
    assert registration.customer.address.startswith("Flat 12A")

    client.post(f"/review/{registration.reference}/changes/{change.pk}/decide/", {"approve": "yes"})
    registration.customer.refresh_from_db()
    assert registration.customer.address == "Flat 3B, 1 Queen's Road Central"
    assert registration.customer.contact_number == "+85298765432"
    event = AuditEvent.objects.get(action="change_approved")
    assert event.fields == ["address", "contact_number"]
    assert "Queen" not in repr(event.details)


def test_a_rejected_update_changes_nothing(client, store, staff, supervisor):
    registration = approved(store, staff, supervisor)
    change = make_pending_change(
        registration, requested_by=staff, new={"address": "Somewhere else"}
    )
    client.force_login(supervisor)
    response = client.post(
        f"/review/{registration.reference}/changes/{change.pk}/decide/", {"approve": "no"}
    )
    assert response.status_code == 400  # a reason is needed
    client.post(
        f"/review/{registration.reference}/changes/{change.pk}/decide/",
        {"approve": "no", "reason_code": "document_mismatch"},
    )
    change.refresh_from_db()
    registration.customer.refresh_from_db()
    assert change.status == "rejected"
    assert registration.customer.address.startswith("Flat 12A")


def test_an_approved_termination_ends_the_registration(client, store, staff, supervisor):
    registration = approved(store, staff, supervisor)
    change = make_pending_change(
        registration, requested_by=staff, termination_reason="Customer leaves Hong Kong"
    )
    client.force_login(supervisor)
    client.post(f"/review/{registration.reference}/changes/{change.pk}/decide/", {"approve": "yes"})
    registration.refresh_from_db()
    assert registration.status == "terminated" and registration.terminated_at is not None
    assert AuditEvent.objects.filter(action="terminated").count() == 1


def test_nobody_decides_a_change_they_asked_for(store, staff):
    both = make_user(roles.SUPERVISOR, supervises=[store])
    registration = approved(store, staff, both)
    change = make_pending_change(registration, requested_by=both)
    with pytest.raises(ValidationError, match="Four-eyes"):
        services.pending_change_decide(change=change, reviewer=both, approve=True)


def test_the_dashboard_shows_counts_reasons_and_median_time(client, store, staff, supervisor):
    """Four submissions; decided after 10, 30 and 50 minutes: two returned for an expired
    document, one rejected as suspected fraud; one still waits."""
    now = timezone.now()
    outcomes = [
        (10, "returned", "document_expired"),
        (30, "returned", "document_expired"),
        (50, "rejected", "suspected_fraud"),
        (None, "", ""),
    ]
    for minutes, outcome, reason_code in outcomes:
        registration = make_complete_draft(store=store, created_by=staff)
        services.registration_submit(
            registration=registration, actor=staff, declaration_accepted=True
        )
        if minutes is None:
            continue
        Registration.objects.filter(pk=registration.pk).update(
            submitted_at=now - datetime.timedelta(minutes=minutes)
        )
        registration.refresh_from_db()
        services.registration_decide(
            registration=registration,
            reviewer=supervisor,
            outcome=outcome,
            reason_code=reason_code,
        )
    client.force_login(supervisor)
    page = client.get("/review/dashboard/").content.decode()

    statuses = {
        label: int(count)
        for count, label in re.findall(
            r'stat-number">(\d+)</div><div class="text-body-secondary small">([^<]+)<', page
        )
    }
    assert statuses == {
        "Draft": 0,
        "Pending review": 1,
        "Approved": 0,
        "Rejected": 1,
        "Returned for correction": 2,
        "Suspended": 0,
        "Terminated": 0,
    }
    reasons = re.findall(r'<tr><td>([^<]+)</td>.*?<td class="text-end">(\d+)</td></tr>', page, re.S)
    assert reasons == [("Document expired", "2"), ("Suspected fraud", "1")]
    median = re.search(r'id="median">([^<]+)<', page).group(1)
    assert median == "30 min"
    assert "over 3 decisions in the last 30 days" in page
    daily = re.findall(r"<title>[^<]*: (\d+)</title>", page)
    assert len(daily) == 30 and sum(map(int, daily)) == 4


def test_counter_sees_decisions_since_last_look(client, store, staff, supervisor):
    registration = pending(store, staff)
    services.registration_decide(
        registration=registration,
        reviewer=supervisor,
        outcome="returned",
        reason_code="materials_incomplete",
    )
    client.force_login(staff)
    page = client.get("/").content.decode()
    assert 'id="decided-since"' in page
    assert registration.reference in page and "Materials incomplete" in page
    client.post("/decisions/seen/")
    page = client.get("/").content.decode()
    assert 'id="decided-since"' not in page
    # Still in the "to correct" list with its reason.
    assert registration.reference in page and "Materials incomplete" in page


def test_person_identity_values_never_reach_the_review_audit_events(store, staff, supervisor):
    registration = pending(store, staff, customer=make_person(name_en="WONG Siu Fong"))
    services.registration_decide(
        registration=registration, reviewer=supervisor, outcome="approved", comment="WONG ok"
    )
    dump = repr(list(AuditEvent.objects.values()))
    assert "WONG" not in dump


def test_a_tampered_submission_time_gets_a_message_not_an_error_page(
    client, store, staff, supervisor
):
    registration = pending(store, staff)
    client.force_login(supervisor)
    for tampered in ["0001-01-01 00:00:00", "garbage"]:
        response = client.post(
            f"/review/{registration.reference}/decide/",
            {"outcome": "approved", "submitted_at": tampered},
        )
        assert response.status_code == 400
        page = response.content.decode()
        assert "This page was out of date" in page
        assert registration.submitted_at.isoformat() in page  # the retry carries the real one
    registration.refresh_from_db()
    assert registration.status == "pending"


def test_a_refused_decision_shows_the_record_again_and_records_that_view(
    client, store, staff, supervisor
):
    registration = pending(store, staff)
    client.force_login(supervisor)
    client.post(
        f"/review/{registration.reference}/decide/",
        decide_form(registration, outcome="rejected"),
    )
    last = AuditEvent.objects.order_by("-id").first()
    assert (last.action, last.registration_reference) == ("viewed", registration.reference)
    assert last.details["after"] == "invalid_decision"


def test_revealing_on_a_purged_record_is_refused_with_a_message(client, store, staff, supervisor):
    registration = approved(store, staff, supervisor)
    Registration.objects.filter(pk=registration.pk).update(purged_at=timezone.now())
    client.force_login(supervisor)
    response = client.post(
        f"/review/{registration.reference}/reveal/",
        {"field": "address", "reason": "compare_with_copy"},
    )
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action="revealed").count() == 0


def test_the_services_refuse_a_supervisor_of_another_store(store, staff):
    from django.core.exceptions import PermissionDenied

    elsewhere = make_user(roles.SUPERVISOR, supervises=[])
    registration = pending(store, staff)
    with pytest.raises(PermissionDenied):
        services.registration_decide(
            registration=registration, reviewer=elsewhere, outcome="approved"
        )
    with pytest.raises(PermissionDenied):
        services.identity_reveal(
            registration=registration, user=elsewhere, field="address", reason="correct_error"
        )
    registration.refresh_from_db()
    assert registration.status == "pending"


def test_the_supervisor_sees_why_the_customer_ends_the_registration(
    client, store, staff, supervisor
):
    registration = approved(store, staff, supervisor)
    make_pending_change(registration, requested_by=staff, termination_reason="Moving abroad")
    client.force_login(supervisor)
    assert "Moving abroad" in client.get(f"/review/{registration.reference}/").content.decode()


def test_a_refused_renewed_document_copy_is_not_kept(
    store, staff, supervisor, settings, tmp_path, django_capture_on_commit_callbacks
):
    from registrations import documents
    from registrations.models import DocumentCopy

    settings.PRIVATE_STORAGE_ROOT = tmp_path
    registration = approved(store, staff, supervisor)
    copy = DocumentCopy.objects.create(
        registration=registration,
        kind=DocumentCopy.Kind.IDENTITY,
        stored_name=documents.write_encrypted(b"%PDF-1.4 renewed card"),
        content_type="application/pdf",
        size=21,
        uploaded_by=staff,
    )
    change = make_pending_change(
        registration,
        requested_by=staff,
        new={"document_number": "Z683365A"},
        new_document_type="hkid",
        new_document_copy=copy,
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.pending_change_decide(
            change=change, reviewer=supervisor, approve=False, reason_code="document_mismatch"
        )
    assert not DocumentCopy.objects.filter(pk=copy.pk).exists()
    assert not documents.is_stored(copy.stored_name)
    registration.customer.refresh_from_db()
    assert registration.customer.document_number == "A1234563"


def test_a_supervisor_can_reveal_an_asked_for_value_with_a_reason(client, store, staff):
    reviewer = make_user(roles.SUPERVISOR, supervises=[store])
    registration = approved(store, staff, reviewer)
    change = make_pending_change(
        registration, requested_by=staff, new={"address": "Flat 3B, 1 Queen's Road Central"}
    )
    client.force_login(reviewer)
    response = client.post(
        f"/review/{registration.reference}/changes/{change.pk}/reveal/",
        {"field": "address", "reason": "confirm_with_customer"},
    )
    assert "Flat 3B, 1 Queen&#x27;s Road Central" in response.content.decode()
    event = AuditEvent.objects.get(action="revealed")
    assert event.fields == ["new_address"] and event.reason == "confirm_with_customer"
    assert event.details == {"change": change.pk}


def test_queue_filters_apply_to_changes_and_say_when_nothing_matches(
    client, store, other_store, staff, supervisor
):
    registration = approved(other_store, staff, supervisor)
    make_pending_change(registration, requested_by=staff, new={"contact_number": "+85298765432"})
    client.force_login(supervisor)
    page = client.get("/review/").content.decode()
    assert registration.reference in page and "Contact number" in page
    page = client.get("/review/", {"store": store.pk}).content.decode()
    assert registration.reference not in page
    assert "No submission matches these filters." in page
    assert "No change matches these filters." in page


def test_the_store_name_follows_the_page_language(client, store, staff, supervisor):
    from registrations.models import Store

    Store.objects.filter(pk=store.pk).update(name_zh="旺角")
    pending(store, staff)
    client.force_login(supervisor)
    client.cookies["django_language"] = "zh-hant"
    assert "旺角" in client.get("/review/").content.decode()
    client.cookies["django_language"] = "en"
    page = client.get("/review/").content.decode()
    assert "Mong Kok" in page and "旺角" not in page


def test_the_counter_hears_how_its_update_request_was_decided(client, store, staff, supervisor):
    registration = approved(store, staff, supervisor)
    change = make_pending_change(
        registration, requested_by=staff, new={"address": "Somewhere else"}
    )
    client.force_login(supervisor)
    response = client.post(
        f"/review/{registration.reference}/changes/{change.pk}/decide/",
        {"approve": "no", "reason_code": "document_mismatch"},
        follow=True,
    )
    assert f"{registration.reference}: update of information rejected." in (
        response.content.decode()
    )
    client.force_login(staff)
    page = client.get("/").content.decode()
    section = page.split('id="decided-since"')[1].split("</ul>")[0]
    assert registration.reference in section
    assert "Rejected" in section and "Document does not match the person" in section
