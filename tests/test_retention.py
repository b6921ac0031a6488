"""Retention: identity data of terminated registrations is purged when the policy allows."""

import datetime
import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from registrations import documents
from registrations.audit import audit_chain_verify
from registrations.models import AuditEvent, DocumentCopy, Person, Registration
from tests.factories import (
    PDF,
    make_approved,
    make_decided,
    make_document_copy,
    make_status_change,
)

pytestmark = pytest.mark.django_db


def terminated(store, staff, supervisor, *, days_ago: int) -> Registration:
    when = timezone.now() - datetime.timedelta(days=days_ago)
    registration = make_decided(
        "terminated",
        store=store,
        created_by=staff,
        reviewer=supervisor,
        decided_at=when - datetime.timedelta(days=30),
        terminated_at=when,
        comment="Customer CHAN asked to end it",
    )
    make_status_change(
        registration,
        from_status="approved",
        to_status="terminated",
        actor=supervisor,
        comment="CHAN leaves",
    )
    return registration


def test_hong_kong_keeps_12_months_after_termination_then_purges(
    store, staff, supervisor, private_storage, django_capture_on_commit_callbacks
):
    old = terminated(store, staff, supervisor, days_ago=400)
    recent = terminated(store, staff, supervisor, days_ago=300)
    copy = make_document_copy(old, data=PDF)
    active = make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        decided_at=timezone.now() - datetime.timedelta(days=900),
    )
    customer_pk = old.customer_id
    kept_for_audit = (old.reference, old.status, old.iccid, old.msisdn, old.store_id)

    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purge_expired", stdout=out)
    assert "terminated or rejected more than 365 days ago (hk policy): 1 purged" in out.getvalue()

    old.refresh_from_db()
    recent.refresh_from_db()
    assert old.purged_at is not None and old.customer_id is None and old.comment == ""
    assert not Person.objects.filter(pk=customer_pk).exists()
    assert old.history.get().comment == ""
    assert not documents.is_stored(copy.stored_name)
    assert DocumentCopy.objects.get(pk=copy.pk).purged_at is not None
    # What the audit needs stays.
    assert old.iccid and old.msisdn
    assert (old.reference, old.status, old.iccid, old.msisdn, old.store_id) == kept_for_audit
    assert recent.purged_at is None and recent.customer is not None
    assert Registration.objects.get(pk=active.pk).customer is not None

    event = AuditEvent.objects.get(action="purged", registration_reference=old.reference)
    assert event.details["reason"] == "retention"
    assert "document_number" in event.fields
    assert audit_chain_verify().ok


def test_the_philippines_keeps_10_years(store, staff, supervisor, settings, private_storage):
    settings.SIMREG_POLICY = "ph"
    kept = terminated(store, staff, supervisor, days_ago=400)
    gone = terminated(store, staff, supervisor, days_ago=3660)
    call_command("purge_expired", stdout=io.StringIO())
    kept.refresh_from_db()
    gone.refresh_from_db()
    assert kept.purged_at is None
    assert gone.purged_at is not None


def test_dry_run_counts_and_changes_nothing(store, staff, supervisor, private_storage):
    old = terminated(store, staff, supervisor, days_ago=400)
    before = AuditEvent.objects.count()
    out = io.StringIO()
    call_command("purge_expired", "--dry-run", stdout=out)
    assert "365 days ago (hk policy): 1 would be purged (dry run)" in out.getvalue()
    old.refresh_from_db()
    assert old.purged_at is None and old.customer is not None
    assert AuditEvent.objects.count() == before


def test_a_purged_record_still_opens_without_identity(
    client, store, staff, supervisor, private_storage
):
    old = terminated(store, staff, supervisor, days_ago=400)
    call_command("purge_expired", stdout=io.StringIO())
    client.force_login(supervisor)
    page = client.get(f"/review/{old.reference}/")
    assert page.status_code == 200
    assert "purged" in page.content.decode()
    client.force_login(staff)
    for path in (f"/counter/{old.reference}/", f"/counter/{old.reference}/receipt/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "CHAN" not in response.content.decode()


def test_a_rejected_submission_is_purged_after_the_same_period(
    store, staff, supervisor, private_storage
):
    long_ago = timezone.now() - datetime.timedelta(days=400)
    fraud = {
        "store": store,
        "created_by": staff,
        "reviewer": supervisor,
        "reason_code": "suspected_fraud",
    }
    rejected = make_decided("rejected", decided_at=long_ago, **fraud)
    recent = make_decided("rejected", **fraud)
    call_command("purge_expired", stdout=io.StringIO())
    rejected.refresh_from_db()
    recent.refresh_from_db()
    assert rejected.purged_at is not None and rejected.customer_id is None
    assert recent.purged_at is None
