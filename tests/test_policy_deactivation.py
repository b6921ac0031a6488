"""Deactivation rules as policy figures: how long an unregistered or a suspended SIM stays
active, the reactivation window, and the subscriber's death as a termination cause with its
own retention period; each figure read from the profile in force where it is used."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from django.test import Client
from django.utils import timezone
from django.utils.formats import date_format

from registrations import policy, selectors, services
from registrations.models import AuditEvent, PendingChange, Registration, TerminationCause
from tests.factories import make_approved, make_decided, make_pending_change, url

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


def test_both_profiles_name_the_deactivation_figures():
    hk, ph = policy.HONG_KONG, policy.PHILIPPINES
    # Both laws register a SIM before it is served.
    assert hk.unregistered_sim_active_for == ph.unregistered_sim_active_for == datetime.timedelta(0)
    # The Philippine IRR: reactivation not later than five days after deactivation.
    assert ph.reactivation_window == datetime.timedelta(days=5)
    assert hk.reactivation_window is None
    assert hk.retention_after_death == datetime.timedelta(days=365)
    assert ph.retention_after_death == datetime.timedelta(days=3653)
    assert hk.breach_notification_deadline is None
    assert ph.breach_notification_deadline == datetime.timedelta(hours=72)
    assert hk.suspended_sim_active_for > datetime.timedelta(0)


def test_retention_is_chosen_by_the_cause_of_termination():
    profile = dataclasses.replace(
        policy.HONG_KONG,
        retention_after_termination=datetime.timedelta(days=365),
        retention_after_death=datetime.timedelta(days=30),
    )
    assert policy.retention_after(profile, cause=TerminationCause.DEATH).days == 30
    for cause in ("", TerminationCause.CUSTOMER_REQUEST, TerminationCause.NON_COMPLIANCE):
        assert policy.retention_after(profile, cause=cause).days == 365


@pytest.fixture
def approved(store, staff, supervisor):
    return make_approved(store=store, created_by=staff, reviewer=supervisor)


def test_the_counter_records_the_death_of_the_subscriber_and_approval_carries_it(
    staff_client, approved, supervisor
):
    response = staff_client.post(
        url("counter-terminate", approved),
        {"termination_cause": "death", "termination_reason": "Daughter brought the certificate"},
    )
    assert response.status_code == 302
    change = PendingChange.objects.get()
    assert change.termination_cause == TerminationCause.DEATH
    (requested,) = AuditEvent.objects.filter(action=AuditEvent.Action.TERMINATION_REQUESTED)
    assert requested.details["cause"] == "death"
    assert "certificate" not in repr(requested.details)
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert "Death of the subscriber" in page

    client = Client()
    client.force_login(supervisor)
    assert "Death of the subscriber" in client.get(url("review-detail", approved)).content.decode()
    services.pending_change_decide(change=change, reviewer=supervisor, approve=True)
    approved.refresh_from_db()
    assert approved.status == Registration.Status.TERMINATED
    assert approved.termination_cause == TerminationCause.DEATH
    page = staff_client.get(url("counter-record", approved)).content.decode()
    assert 'id="terminated-notice"' in page and "Death of the subscriber" in page


def test_a_termination_without_a_cause_is_the_customers_request(approved, supervisor, staff):
    change = make_pending_change(approved, requested_by=staff)
    services.pending_change_decide(change=change, reviewer=supervisor, approve=True)
    approved.refresh_from_db()
    # A change recorded before causes existed ends as "other"; the form's default is the
    # customer's own request.
    assert approved.termination_cause == TerminationCause.OTHER


def test_an_unknown_cause_is_refused_beside_the_field_and_the_reason_kept(staff_client, approved):
    response = staff_client.post(
        url("counter-terminate", approved),
        {"termination_cause": "abducted", "termination_reason": "陳𠮷 asked 𠝹"},
    )
    assert "termination_cause" in response.context["form"].errors
    assert "陳𠮷 asked 𠝹" in response.content.decode()
    assert not PendingChange.objects.exists()


def terminated(store, staff, supervisor, *, days_ago: int, cause: str) -> Registration:
    when = timezone.now() - datetime.timedelta(days=days_ago)
    return make_decided(
        "terminated",
        store=store,
        created_by=staff,
        reviewer=supervisor,
        decided_at=when - datetime.timedelta(days=30),
        terminated_at=when,
        termination_cause=cause,
    )


def test_a_death_is_purged_after_its_own_retention_period(
    store, staff, supervisor, settings, monkeypatch
):
    settings.SIMREG_POLICY = "hk"
    monkeypatch.setitem(
        policy.PROFILES,
        "hk",
        dataclasses.replace(policy.HONG_KONG, retention_after_death=datetime.timedelta(days=30)),
    )
    death = terminated(store, staff, supervisor, days_ago=40, cause=TerminationCause.DEATH)
    request = terminated(
        store, staff, supervisor, days_ago=40, cause=TerminationCause.CUSTOMER_REQUEST
    )
    recent_death = terminated(store, staff, supervisor, days_ago=20, cause=TerminationCause.DEATH)
    due = set(selectors.registrations_past_retention(now=timezone.now()))
    assert due == {death}
    assert services.registrations_purge_expired() == 1
    for registration in (death, request, recent_death):
        registration.refresh_from_db()
    assert death.purged_at is not None and death.customer is None
    assert request.purged_at is None and recent_death.purged_at is None
    (purged,) = AuditEvent.objects.filter(action=AuditEvent.Action.PURGED)
    assert purged.details["cause"] == "death"

    # A death is kept longer than other causes when the profile says so.
    monkeypatch.setitem(
        policy.PROFILES,
        "hk",
        dataclasses.replace(policy.HONG_KONG, retention_after_death=datetime.timedelta(days=500)),
    )
    old_death = terminated(store, staff, supervisor, days_ago=400, cause=TerminationCause.DEATH)
    old_request = terminated(store, staff, supervisor, days_ago=400, cause="other")
    due = set(selectors.registrations_past_retention(now=timezone.now()))
    assert old_request in due and old_death not in due


@pytest.mark.parametrize("days", [30, 10])
def test_the_suspended_record_shows_when_its_sim_is_deactivated(
    staff_client, store, staff, supervisor, settings, monkeypatch, days
):
    """suspended_at plus the profile's figure, on the counter's and the supervisor's pages."""
    settings.SIMREG_POLICY = "hk"
    monkeypatch.setitem(
        policy.PROFILES,
        "hk",
        dataclasses.replace(
            policy.HONG_KONG, suspended_sim_active_for=datetime.timedelta(days=days)
        ),
    )
    suspended_at = timezone.now() - datetime.timedelta(days=2)
    suspended = make_decided(
        "suspended",
        store=store,
        created_by=staff,
        reviewer=supervisor,
        suspended_at=suspended_at,
        sim_loss="lost",
    )
    expected = date_format(
        timezone.localtime(suspended_at + datetime.timedelta(days=days)), "SHORT_DATETIME_FORMAT"
    )
    client = Client()
    client.force_login(supervisor)
    for page in (
        staff_client.get(url("counter-record", suspended)).content.decode(),
        client.get(url("review-detail", suspended)).content.decode(),
    ):
        notice = page[page.index('id="deactivation-date"') :][:300]
        assert expected in notice, notice
