"""Customer notifications: what each change queues in the outbox (in the change's own
transaction), what a message says, the supervisors' list of undelivered messages, and the
outbox's recipients under retention and key rotation. Delivery through real servers is in
tests/test_notifications_delivery.py."""

from __future__ import annotations

import datetime

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from registrations import roles, services
from registrations.models import (
    AuditEvent,
    Notification,
    PendingChange,
    Registration,
)
from registrations.notifications import notification_queue, notification_text
from registrations.services import keys as keys_rotation
from tests.factories import (
    CUSTOMER,
    make_approved,
    make_complete_draft,
    make_decided,
    make_document_copy,
    make_pending_change,
    make_person,
    make_registration,
    make_returned,
    make_store,
    make_user,
)
from tests.test_startup import ROOT, production_env

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

Event = Notification.Event
SMS, EMAIL = Notification.Channel.SMS, Notification.Channel.EMAIL


def queued(registration: Registration) -> list[tuple[str, str, str, str]]:
    """(channel, event, language, recipient) of the registration's messages, oldest first."""
    return [
        (n.channel, n.event, n.language, n.recipient)
        for n in Notification.objects.filter(registration=registration).order_by("pk")
    ]


def both(event: str, language: str = "en") -> list[tuple[str, str, str, str]]:
    return [
        (SMS, event, language, CUSTOMER["contact_number"]),
        (EMAIL, event, language, CUSTOMER["email"]),
    ]


# What each change queues ------------------------------------------------------------------------


def test_a_submission_queues_an_sms_and_an_email_in_the_chosen_language(store, staff):
    draft = make_complete_draft(store=store, created_by=staff, notice_language="zh-hant")
    services.registration_submit(registration=draft, actor=staff, declaration_accepted=True)
    assert queued(draft) == both(Event.SUBMITTED, "zh-hant")
    row = Notification.objects.filter(registration=draft).first()
    assert row.store == store and row.state == Notification.State.QUEUED and row.attempts == 0


def test_a_resubmission_after_a_return_queues_submitted_again(store, staff, supervisor):
    returned = make_returned(store=store, created_by=staff, reviewer=supervisor)
    make_document_copy(returned)
    services.registration_submit(registration=returned, actor=staff, declaration_accepted=True)
    assert queued(returned) == both(Event.SUBMITTED)


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [("approved", ""), ("rejected", "suspected_fraud"), ("returned", "document_unreadable")],
)
def test_each_decision_queues_its_outcome(store, staff, supervisor, outcome, reason):
    pending = make_registration(store=store, created_by=staff, status="pending")
    services.registration_decide(
        registration=pending,
        reviewer=supervisor,
        outcome=outcome,
        reason_code=reason,
        comment="Customer seemed nervous",
    )
    assert queued(pending) == both(outcome)


def test_without_a_contact_number_the_sms_goes_to_the_registered_mobile_number(
    store, staff, supervisor
):
    customer = make_person(contact_number="", email="")
    pending = make_registration(store=store, created_by=staff, status="pending", customer=customer)
    services.registration_decide(registration=pending, reviewer=supervisor, outcome="approved")
    assert queued(pending) == [(SMS, Event.APPROVED, "en", pending.msisdn)]


@pytest.mark.parametrize(
    ("new", "kind", "approve", "event"),
    [
        ({"address": "Flat 3, 1 Harbour Road"}, PendingChange.Kind.UPDATE, True, Event.UPDATED),
        (None, PendingChange.Kind.TERMINATION, True, Event.TERMINATED),
        (
            {"address": "Flat 3, 1 Harbour Road"},
            PendingChange.Kind.UPDATE,
            False,
            Event.CHANGE_REFUSED,
        ),
        (None, PendingChange.Kind.TERMINATION, False, Event.CHANGE_REFUSED),
    ],
)
def test_each_decided_change_queues_what_the_customer_is_told(
    store, staff, supervisor, new, kind, approve, event
):
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    change = make_pending_change(approved, requested_by=staff, new=new, kind=kind)
    services.pending_change_decide(
        change=change,
        reviewer=supervisor,
        approve=approve,
        reason_code="" if approve else "materials_incomplete",
    )
    assert queued(approved) == both(event)


def test_an_approved_update_of_the_contact_number_is_told_to_the_new_number(
    store, staff, supervisor
):
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    change = make_pending_change(
        approved, requested_by=staff, new={"contact_number": "+85298765432"}
    )
    services.pending_change_decide(change=change, reviewer=supervisor, approve=True)
    assert (SMS, Event.UPDATED, "en", "+85298765432") in queued(approved)


def test_an_approved_replacement_queues_replaced(store, staff, supervisor):
    approved = make_decided(
        "suspended",
        store=store,
        created_by=staff,
        reviewer=supervisor,
        sim_loss="lost",
        suspended_at=timezone.now(),
    )
    change = make_pending_change(
        approved,
        requested_by=staff,
        kind=PendingChange.Kind.REPLACEMENT,
        changed_fields=["iccid"],
        new_sim_kind=Registration.SimKind.PHYSICAL,
        new_iccid="89852001234567890126",
    )
    services.pending_change_decide(change=change, reviewer=supervisor, approve=True)
    assert queued(approved) == both(Event.REPLACED)


def test_a_change_rolled_back_queues_nothing(store, staff, supervisor):
    pending = make_registration(store=store, created_by=staff, status="pending")

    class Abandoned(Exception):
        pass

    with pytest.raises(Abandoned), transaction.atomic():
        services.registration_decide(registration=pending, reviewer=supervisor, outcome="approved")
        assert len(queued(pending)) == 2
        raise Abandoned
    assert queued(pending) == []
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_a_refused_submission_queues_nothing(store, staff):
    draft = make_complete_draft(store=store, created_by=staff)
    with pytest.raises(Exception):  # noqa: B017 - the declaration is missing
        services.registration_submit(registration=draft, actor=staff, declaration_accepted=False)
    assert queued(draft) == []


def test_the_outbox_is_written_in_the_change_s_transaction_and_sent_after_it_commits(
    store, staff, supervisor, django_capture_on_commit_callbacks
):
    pending = make_registration(store=store, created_by=staff, status="pending")
    with django_capture_on_commit_callbacks(execute=True):
        services.registration_decide(registration=pending, reviewer=supervisor, outcome="approved")
        # Nothing is enqueued before the decision commits.
        assert not DBTaskResult.objects.filter(task_path__endswith=".notifications_deliver_due")
    # Then one delivery is enqueued for the job worker.
    assert (
        DBTaskResult.objects.filter(task_path__endswith=".notifications_deliver_due").count() == 1
    )


def test_an_unknown_event_is_refused(store, staff):
    registration = make_registration(store=store, created_by=staff, status="pending")
    with pytest.raises(ValueError, match="Unknown notification event"):
        notification_queue(registration=registration, event="won_a_prize")


# What a message says ----------------------------------------------------------------------------


IDENTITY_VALUES = [
    CUSTOMER["name_en"],
    "CHAN",
    CUSTOMER["name_zh"],
    "陳",
    "𠮷",
    CUSTOMER["document_number"],
    "A123456",
    "1990-05-17",
    "17/05/1990",
    "Nathan Road",
    "tai.man.chan",
    CUSTOMER["contact_number"],
    "91234567",
]


@pytest.mark.parametrize("event", Event.values)
@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_every_message_names_the_reference_and_the_store_and_no_identity_value(event, language):
    message = notification_text(
        event=event,
        reference="ABCDE-FGH23",
        store_name="Mong Kok",
        language=language,
        reason_code="document_unreadable",
    )
    for text in (message.subject, message.text):
        assert "ABCDE-FGH23" in text
        assert not [value for value in IDENTITY_VALUES if value in text]
    assert "Mong Kok" in message.text


def test_a_refusal_gives_the_reason_s_label_in_the_customer_s_language_never_the_comment(
    store, staff, supervisor
):
    pending = make_registration(
        store=store, created_by=staff, status="pending", notice_language="zh-hant"
    )
    services.registration_decide(
        registration=pending,
        reviewer=supervisor,
        outcome="returned",
        reason_code="document_unreadable",
        comment="Photo blurred, ask CHAN to come back",
    )
    from registrations.notifications import notification_message

    message = notification_message(
        notification=Notification.objects.filter(registration=pending).first()
    )
    assert pending.reference in message.text
    assert "證件無法辨認" in message.text  # "Document unreadable"
    assert store.name_zh in message.text
    assert "blurred" not in message.text and "CHAN" not in message.text


def test_an_english_message_says_the_outcome_in_plain_words(store, staff, supervisor):
    pending = make_registration(store=store, created_by=staff, status="pending")
    services.registration_decide(
        registration=pending, reviewer=supervisor, outcome="rejected", reason_code="suspected_fraud"
    )
    from registrations.notifications import notification_message

    message = notification_message(
        notification=Notification.objects.filter(registration=pending).first()
    )
    assert f"your SIM registration {pending.reference} has been rejected." in message.text
    assert "Reason: Suspected fraud." in message.text
    assert f"Store: {store.name}." in message.text


# The supervisors' list --------------------------------------------------------------------------


def _undelivered(registration: Registration, *, state: str, attempts: int) -> Notification:
    return Notification.objects.create(
        registration=registration,
        store=registration.store,
        channel=SMS,
        event=Event.APPROVED,
        language="en",
        recipient=CUSTOMER["contact_number"],
        state=state,
        attempts=attempts,
        last_error="HTTP 503",
        next_attempt_at=timezone.now() + datetime.timedelta(minutes=4),
    )


@pytest.fixture
def supervisor_client(client, supervisor):
    client.force_login(supervisor)
    return client


def test_the_supervisor_sees_failed_and_retrying_messages_masked_and_the_list_is_audited(
    supervisor_client, store, staff, supervisor
):
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    failed = _undelivered(approved, state="failed", attempts=8)
    retrying = _undelivered(approved, state="queued", attempts=2)
    waiting = _undelivered(approved, state="queued", attempts=0)
    sent = _undelivered(approved, state="sent", attempts=1)
    elsewhere_store = make_store(code="TST1", name="Tsuen Wan")
    elsewhere = make_approved(store=elsewhere_store, created_by=staff, reviewer=supervisor)
    _undelivered(elsewhere, state="failed", attempts=8)

    response = supervisor_client.get(reverse("review-notifications"))
    assert response.status_code == 200
    text = response.content.decode()
    rows = response.context["rows"]
    assert {row["pk"] for row in rows} == {failed.pk, retrying.pk}
    assert waiting.pk not in {row["pk"] for row in rows} and sent.pk not in {
        row["pk"] for row in rows
    }
    assert reverse("review-detail", args=[approved.reference]) in text
    assert elsewhere.reference not in text
    assert "•••• 4567" in text and CUSTOMER["contact_number"] not in text
    assert "HTTP 503" in text and "Retry now" in text
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == AuditEvent.Action.LISTED
    assert event.details == {"view": "review-notifications", "references": [approved.reference]}
    assert CUSTOMER["contact_number"] not in str(event.details)


def test_the_queue_links_to_the_list_with_the_count_of_failed_messages(
    supervisor_client, store, staff, supervisor
):
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    _undelivered(approved, state="failed", attempts=8)
    _undelivered(approved, state="failed", attempts=8)
    _undelivered(approved, state="queued", attempts=3)
    response = supervisor_client.get(reverse("review-queue"))
    assert response.context["failed_notifications"] == 2
    assert reverse("review-notifications") in response.content.decode()


def test_retry_now_queues_a_failed_message_again_and_is_audited(
    supervisor_client, store, staff, supervisor
):
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    failed = _undelivered(approved, state="failed", attempts=8)
    response = supervisor_client.post(
        reverse("review-notifications-retry"), {"notification": failed.pk}
    )
    assert response.status_code == 302 and response["Location"] == reverse("review-notifications")
    failed.refresh_from_db()
    assert failed.state == "queued" and failed.next_attempt_at <= timezone.now()
    event = AuditEvent.objects.order_by("-id").first()
    assert event.actor == supervisor and event.registration_reference == approved.reference
    assert event.action == "notification_retried" and event.details["notification"] == failed.pk


def test_retry_of_another_store_s_message_changes_nothing(client, store, staff, supervisor):
    elsewhere = make_store(code="TST1", name="Tsuen Wan")
    approved = make_approved(store=elsewhere, created_by=staff, reviewer=supervisor)
    failed = _undelivered(approved, state="failed", attempts=8)
    other_supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="other")
    client.force_login(other_supervisor)
    client.post(reverse("review-notifications-retry"), {"notification": failed.pk})
    failed.refresh_from_db()
    assert failed.state == "failed"
    response = client.post(reverse("review-notifications-retry"), {"notification": "x"})
    assert response.status_code == 302


# Retention and keys -----------------------------------------------------------------------------


def test_purging_a_registration_deletes_its_messages_and_their_recipients(store, staff, supervisor):
    ended = make_decided(
        "terminated",
        store=store,
        created_by=staff,
        reviewer=supervisor,
        terminated_at=timezone.now() - datetime.timedelta(days=800),
    )
    notification_queue(registration=ended, event=Event.TERMINATED)
    kept = make_approved(store=store, created_by=staff, reviewer=supervisor)
    notification_queue(registration=kept, event=Event.APPROVED)
    services.registration_purge_identity(registration=ended, now=timezone.now())
    assert not Notification.objects.filter(registration=ended).exists()
    assert Notification.objects.filter(registration=kept).count() == 2


def test_key_rotation_covers_the_recipients():
    found = {spec.label: set(spec.columns) for spec in keys_rotation.encrypted_tables()}
    assert found["Notification"] == {"recipient"}


def test_the_recipient_is_ciphertext_in_the_database(store, staff, supervisor):
    from django.db import connection

    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    notification_queue(registration=approved, event=Event.APPROVED)
    with connection.cursor() as cursor:
        cursor.execute("SELECT recipient FROM registrations_notification")
        stored = [row[0] for row in cursor.fetchall()]
    assert len(stored) == 2
    assert not [value for value in stored if "9123" in value or "example.com" in value]


# Settings ----------------------------------------------------------------------------------------


def test_the_http_sms_backend_without_a_gateway_url_stops_start_up():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import simreg.wsgi"],
        cwd=ROOT,
        env=production_env(SIMREG_SMS_BACKEND="http", SIMREG_SMS_GATEWAY_URL=None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "SIMREG_SMS_GATEWAY_URL is not set" in result.stderr
    assert "Traceback" not in result.stderr


def test_retry_now_leaves_a_message_still_being_retried_to_its_back_off(
    supervisor_client, store, staff, supervisor
):
    """A worker may be sending it right now: moving its time forward would send it twice."""
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    retrying = _undelivered(approved, state="queued", attempts=2)
    due = retrying.next_attempt_at
    page = supervisor_client.get(reverse("review-notifications")).content.decode()
    assert approved.reference in page and "Retry now" not in page
    supervisor_client.post(reverse("review-notifications-retry"), {"notification": retrying.pk})
    retrying.refresh_from_db()
    assert retrying.next_attempt_at == due
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION_RETRIED).exists()
