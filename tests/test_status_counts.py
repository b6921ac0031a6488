"""The per-store counts of registrations by status, which the home pages, the dashboard and the
review queue show instead of counting the registrations: exact after every change of status."""

import datetime
import re
import threading

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registrations import roles, selectors, services
from registrations.models import PendingChange, Registration, StoreStatusCount
from tests.factories import (
    make_approved,
    make_complete_draft,
    make_pending_change,
    make_registration,
    make_store,
    make_user,
)

pytestmark = pytest.mark.django_db


def kept(store) -> dict[str, int]:
    rows = StoreStatusCount.objects.filter(store=store).values_list("status", "count")
    return {status: n for status, n in rows if n}


def counted(store) -> dict[str, int]:
    rows = Registration.objects.filter(store=store).values_list("status", flat=True)
    return {status: list(rows).count(status) for status in set(rows)}


def assert_exact(*stores):
    assert selectors.store_status_counts_drift() == []
    for store in stores:
        assert kept(store) == counted(store)


def test_counts_stay_exact_through_every_change_of_status(store, staff, supervisor):
    """Draft, submit, return, resubmit, approve, terminate, purge; reject; discard; stale."""
    other = make_user(roles.SUPERVISOR, supervises=[store])
    registration = make_complete_draft(store=store, created_by=staff)
    assert_exact(store)
    services.registration_submit(registration=registration, actor=staff, declaration_accepted=True)
    assert kept(store) == {"pending": 1}
    assert_exact(store)
    services.registration_decide(
        registration=registration,
        reviewer=supervisor,
        outcome="returned",
        reason_code="document_unreadable",
    )
    assert kept(store) == {"returned": 1}
    assert_exact(store)
    services.registration_submit(registration=registration, actor=staff, declaration_accepted=True)
    assert_exact(store)
    services.registration_decide(registration=registration, reviewer=supervisor, outcome="approved")
    assert kept(store) == {"approved": 1}
    assert_exact(store)
    change = services.registration_request_termination(
        registration=registration, actor=staff, reason="customer asked"
    )
    assert_exact(store)
    services.pending_change_decide(change=change, reviewer=other, approve=True)
    assert change.status == PendingChange.Status.APPROVED
    assert kept(store) == {"terminated": 1}
    assert_exact(store)
    services.registration_purge_identity(registration=registration, now=timezone.now())
    assert Registration.objects.get(pk=registration.pk).purged_at is not None
    assert kept(store) == {"terminated": 1}
    assert_exact(store)

    rejected = make_complete_draft(store=store, created_by=staff)
    services.registration_submit(registration=rejected, actor=staff, declaration_accepted=True)
    services.registration_decide(
        registration=rejected,
        reviewer=supervisor,
        outcome="rejected",
        reason_code="suspected_fraud",
    )
    assert kept(store) == {"terminated": 1, "rejected": 1}
    assert_exact(store)

    draft = services.registration_create_draft(store=store, actor=staff)
    assert kept(store)["draft"] == 1
    services.registration_discard_draft(registration=draft, actor=staff)
    assert "draft" not in kept(store)
    assert_exact(store)

    stale = services.registration_create_draft(store=store, actor=staff)
    assert_exact(store)
    later = timezone.now() + datetime.timedelta(days=3650)
    assert services.drafts_purge_stale(now=later) == 1
    assert not Registration.objects.filter(pk=stale.pk).exists()
    assert_exact(store)


def test_a_refused_submission_changes_no_count(store, staff):
    draft = make_registration(store=store, created_by=staff)  # steps not done
    with pytest.raises(Exception):  # noqa: B017
        services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    assert kept(store) == {"draft": 1}
    assert_exact(store)


def test_the_rebuild_recounts_from_the_rows(store, other_store, staff):
    make_registration(store=store, created_by=staff, status="pending")
    make_registration(store=other_store, created_by=staff)
    StoreStatusCount.objects.all().delete()
    assert selectors.store_status_counts_drift() != []
    services.store_status_counts_rebuild()
    assert_exact(store, other_store)


@pytest.mark.django_db(transaction=True)
def test_two_submits_at_once_in_one_store_leave_the_right_count(store, staff):
    """Two counters of one store submit at the same moment, each on its own connection."""
    second_staff = make_user(roles.COUNTER_STAFF, stores=[store])
    drafts = [
        make_complete_draft(store=store, created_by=staff),
        make_complete_draft(store=store, created_by=second_staff),
    ]
    barrier = threading.Barrier(2)
    errors = []

    def submit(registration, actor):
        try:
            barrier.wait()
            services.registration_submit(
                registration=Registration.objects.get(pk=registration.pk),
                actor=actor,
                declaration_accepted=True,
            )
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=submit, args=(drafts[0], staff)),
        threading.Thread(target=submit, args=(drafts[1], second_staff)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert kept(store) == {"pending": 2}
    assert_exact(store)


# The pages ----------------------------------------------------------------------------------


def _numbers(page: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', page)
    return match[1].strip() if match else ""


def _fill(store, staff, supervisor, n):
    for i in range(n):
        status = ("pending", "approved", "returned", "draft")[i % 4]
        extra = {}
        if status in ("approved", "returned"):
            extra = {"reviewer": supervisor, "decided_at": timezone.now()}
        if status == "returned":
            extra["reason_code"] = "document_unreadable"
        make_registration(store=store, created_by=staff, status=status, **extra)


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/", "staff"),
        ("/", "supervisor"),
        ("/review/dashboard/", "supervisor"),
        ("/review/", "supervisor"),
    ],
)
def test_the_pages_run_as_many_queries_for_2_as_for_50_records(
    client, store, staff, supervisor, path, who
):
    client.force_login(staff if who == "staff" else supervisor)
    _fill(store, staff, supervisor, 2)
    client.get(path)  # warm up session and permission caches
    with CaptureQueriesContext(connection) as few:
        assert client.get(path).status_code == 200
    _fill(store, staff, supervisor, 48)
    with CaptureQueriesContext(connection) as many:
        assert client.get(path).status_code == 200
    assert len(many) == len(few)
    # No COUNT over the registrations, but for the dashboard's window of recent decisions.
    registrations = Registration._meta.db_table
    assert not [
        q["sql"]
        for q in many
        if "COUNT(" in q["sql"].upper()
        and f'FROM "{registrations}"' in q["sql"]
        and f'"{registrations}"."decided_at" >=' not in q["sql"]
    ]


def test_the_pages_show_the_real_counts(client, store, other_store, staff, supervisor):
    elsewhere = make_store(code="TW01", name="Tsuen Wan")
    _fill(store, staff, supervisor, 50)
    _fill(other_store, staff, supervisor, 7)  # supervised, not the staff's store
    _fill(elsewhere, staff, supervisor, 9)  # neither
    supervised = Registration.objects.filter(store__in=[store, other_store])
    pending = supervised.filter(status="pending").count()
    client.force_login(supervisor)
    home = client.get("/").content.decode()
    assert _numbers(home, "pending-count") == str(pending)
    queue = client.get("/review/").content.decode()
    assert _numbers(queue, "queue-count") == str(pending)
    dashboard = client.get("/review/dashboard/")
    statuses = {str(label): n for label, n in dashboard.context["statuses"]}
    for value, label in Registration.Status.choices:
        assert statuses[str(label)] == supervised.filter(status=value).count()
    client.force_login(staff)
    counts = client.get("/").context["counter"]["counts"]
    mine = Registration.objects.filter(store__in=[store])
    for value in ("draft", "pending", "returned", "approved"):
        assert counts.get(value, 0) == mine.filter(status=value).count()


def test_the_queue_pages_by_keyset_through_the_whole_backlog(client, store, staff, supervisor):
    records = [
        make_registration(
            store=store,
            created_by=staff,
            status="pending",
            submitted_at=timezone.now() - datetime.timedelta(minutes=60 - i % 3),
        )
        for i in range(60)
    ]
    expected = [r.reference for r in sorted(records, key=lambda r: (r.submitted_at, r.pk))]
    client.force_login(supervisor)
    seen, url = [], "/review/"
    while url:
        response = client.get(url)
        page = response.context["page"]
        seen += [r.reference for r in page["rows"]]
        url = f"/review/?after={page['next']}" if page["next"] else None
    assert seen == expected
    back = client.get(f"/review/?before={page['previous']}").context["page"]
    assert [r.reference for r in back["rows"]] == expected[25:50]
    assert client.get("/review/?after=junk").context["page"]["rows"][0].reference == expected[0]


def test_a_filtered_queue_past_the_limit_says_more_than(client, store, staff, supervisor, settings):
    from registrations import selectors as queue_selectors

    for _ in range(4):
        make_registration(store=store, created_by=staff, status="pending")
    client.force_login(supervisor)
    original = queue_selectors.QUEUE_COUNT_LIMIT
    queue_selectors.QUEUE_COUNT_LIMIT = 3
    try:
        page = client.get("/review/", {"sim_kind": "physical"}).content.decode()
    finally:
        queue_selectors.QUEUE_COUNT_LIMIT = original
    assert _numbers(page, "queue-count") == "more than 3"


def test_pending_changes_past_the_limit_say_more_than_and_are_not_all_counted(
    client, store, staff, supervisor
):
    from registrations import selectors as queue_selectors

    for _ in range(4):
        approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
        make_pending_change(approved, requested_by=staff)
    client.force_login(supervisor)
    assert _numbers(client.get("/review/").content.decode(), "changes-count") == "4"
    original = queue_selectors.QUEUE_COUNT_LIMIT
    queue_selectors.QUEUE_COUNT_LIMIT = 3
    try:
        response = client.get("/review/")
    finally:
        queue_selectors.QUEUE_COUNT_LIMIT = original
    assert _numbers(response.content.decode(), "changes-count") == "more than 3"
    assert len(response.context["change_rows"]) == 3


def test_the_dashboard_median_covers_the_recent_window_only(client, store, staff, supervisor):
    now = timezone.now()
    for hours in (1, 2, 4):
        make_registration(
            store=store,
            created_by=staff,
            status="approved",
            reviewer=supervisor,
            submitted_at=now - datetime.timedelta(hours=hours),
            decided_at=now,
        )
    make_registration(  # decided before the window: not counted
        store=store,
        created_by=staff,
        status="approved",
        reviewer=supervisor,
        submitted_at=now - datetime.timedelta(days=60),
        decided_at=now - datetime.timedelta(days=40),
    )
    client.force_login(supervisor)
    response = client.get("/review/dashboard/")
    assert response.context["decided"] == 3
    assert response.context["median_seconds"] == pytest.approx(2 * 3600, abs=5)
    assert "in the last 30 days" in response.content.decode()
