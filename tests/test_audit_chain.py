"""The audit log is append-only and hash-chained, and concurrent appends keep one chain."""

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from registrations import db_triggers
from registrations.audit import GENESIS_HASH, audit_chain_verify, audit_record
from registrations.models import AuditEvent, AuditLogIsAppendOnly
from tests.factories import make_registration

pytestmark = pytest.mark.django_db


def test_events_link_into_one_chain_that_verifies(store, staff):
    registration = make_registration(store=store, created_by=staff)
    first = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, registration=registration)
    second = audit_record(
        actor=staff,
        action=AuditEvent.Action.DRAFT_SAVED,
        registration=registration,
        fields=["address", "name_en"],
    )
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    assert second.store_code == store.code
    assert second.registration_reference == registration.reference
    assert second.fields == ["address", "name_en"]
    report = audit_chain_verify()
    assert report.ok and report.checked == AuditEvent.objects.count()


def test_first_event_links_to_the_genesis_hash(staff):
    audit_record(actor=staff, action=AuditEvent.Action.LOGIN)
    events = list(AuditEvent.objects.order_by("seq")[:1])
    assert events and events[0].prev_hash == GENESIS_HASH


def test_events_hold_field_names_never_values(staff):
    with pytest.raises(ValueError):
        audit_record(actor=staff, action=AuditEvent.Action.DRAFT_SAVED, fields=["CHAN Tai Man"])


def test_the_orm_refuses_to_change_or_delete_an_event(staff):
    event = audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    event.reason = "edited"
    with pytest.raises(AuditLogIsAppendOnly):
        event.save()
    with pytest.raises(AuditLogIsAppendOnly):
        event.delete()
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.filter(pk=event.pk).update(reason="edited")
    with pytest.raises(AuditLogIsAppendOnly):
        AuditEvent.objects.all().delete()


@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE {db_triggers.TABLE} SET reason = 'edited'",
        f"DELETE FROM {db_triggers.TABLE}",
    ],
)
def test_the_database_itself_refuses_update_and_delete(staff, sql):
    audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.exclude(reason="edited").count() == AuditEvent.objects.count()


@pytest.mark.skipif("connection.vendor != 'postgresql'")
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_truncate(staff):
    audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {db_triggers.TABLE}")


def test_an_edit_made_behind_the_triggers_back_is_detected(staff):
    for _ in range(3):
        audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    target = AuditEvent.objects.order_by("-seq")[1]
    with connection.cursor() as cursor:
        for statement in db_triggers.drop_statements(connection.vendor):
            cursor.execute(statement)
        cursor.execute(
            f"UPDATE {db_triggers.TABLE} SET action = 'approved' WHERE id = %s", [target.pk]
        )
        for statement in db_triggers.create_statements(connection.vendor):
            cursor.execute(statement)
    report = audit_chain_verify()
    assert not report.ok
    assert report.broken_seq == target.seq
    assert "edited" in report.problem


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_from_separate_connections_keep_one_chain(staff):
    threads, errors = [], []
    per_thread, thread_count = 15, 4
    barrier = threading.Barrier(thread_count)

    def append_many():
        try:
            barrier.wait()
            for _ in range(per_thread):
                audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    for _ in range(thread_count):
        threads.append(threading.Thread(target=append_many))
    before = AuditEvent.objects.count()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditEvent.objects.count() == before + per_thread * thread_count
    report = audit_chain_verify()
    assert report.ok, report.problem
    hashes = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(hashes) == len(set(hashes)), "two events link to the same predecessor: a fork"
