"""The audit log is append-only and hash-chained in independent chains; concurrent appends in
different chains never wait for each other, never fork and never lose an event."""

import threading

import pytest
from django.db import DatabaseError, connection, connections, transaction

from registrations import db_triggers, roles
from registrations.audit import GENESIS_HASH, audit_chain_verify, audit_record, event_hash
from registrations.audit.chain import chain_for
from registrations.models import AuditChain, AuditEvent, AuditLogIsAppendOnly
from tests.factories import make_registration, make_store, make_user

# Tests that look at which chain an event goes to run outside a test-wide transaction: inside
# one, every event follows the transaction's first chain (see test_one_transaction_...).
pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_events_of_a_store_link_into_that_stores_chain(store, staff):
    registration = make_registration(store=store, created_by=staff)
    first = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, registration=registration)
    second = audit_record(
        actor=staff,
        action=AuditEvent.Action.DRAFT_SAVED,
        registration=registration,
        fields=["address", "name_en"],
    )
    assert first.chain == second.chain == chain_for(store_code=store.code, actor_id=None, chains=64)
    assert second.prev_hash == first.hash
    assert second.seq == first.seq + 1
    assert second.id > first.id
    assert second.store_code == store.code
    assert second.registration_reference == registration.reference
    assert second.fields == ["address", "name_en"]
    stored = AuditEvent.objects.get(pk=second.pk)
    assert (stored.chain, stored.seq, stored.hash) == (second.chain, second.seq, second.hash)
    assert event_hash(stored) == stored.hash
    head = AuditChain.objects.get(chain=second.chain)
    assert (head.seq, head.hash, head.prev_hash) == (second.seq, second.hash, first.hash)
    report = audit_chain_verify()
    assert report.ok and report.checked == AuditEvent.objects.count()


@pytest.mark.django_db(transaction=True)
def test_stores_spread_over_chains_and_keep_them(settings):
    settings.AUDIT_CHAINS = 64
    stores = [make_store(code=f"S{number:03d}", name=f"Store {number}") for number in range(12)]
    events = [audit_record(actor=None, action=AuditEvent.Action.VIEWED, store=s) for s in stores]
    again = [audit_record(actor=None, action=AuditEvent.Action.VIEWED, store=s) for s in stores]
    assert len({event.chain for event in events}) >= 6, "twelve stores should not share a chain"
    assert [event.chain for event in events] == [event.chain for event in again]
    assert audit_chain_verify().ok


@pytest.mark.django_db(transaction=True)
def test_events_without_a_store_go_to_the_actors_chain_or_the_system_chain(staff):
    by_staff = audit_record(actor=staff, action=AuditEvent.Action.LOGIN)
    by_system = audit_record(actor=None, action=AuditEvent.Action.PURGED)
    assert by_staff.chain == chain_for(store_code="", actor_id=staff.pk, chains=64)
    assert by_system.chain == 0


@pytest.mark.django_db(transaction=True)
def test_one_transaction_appends_to_one_chain_only(store, other_store, staff):
    """A transaction that holds two chains' locks could deadlock with another holding them in
    the other order: all its events follow its first one."""
    with transaction.atomic():
        first = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=store)
        second = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=other_store)
        third = audit_record(actor=staff, action=AuditEvent.Action.LOGIN)
    assert first.chain == second.chain == third.chain
    assert second.store_code == other_store.code
    after = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=other_store)
    assert after.chain == chain_for(store_code=other_store.code, actor_id=None, chains=64)
    assert audit_chain_verify().ok


def test_a_rolled_back_append_leaves_no_trace_in_the_chain(store, staff):
    kept = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=store)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=store)
        raise RuntimeError("the change it recorded failed")
    following = audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=store)
    assert following.seq == kept.seq + 1 and following.prev_hash == kept.hash
    assert audit_chain_verify().ok


def test_first_event_of_a_chain_links_to_the_genesis_hash(staff):
    event = audit_record(actor=staff, action=AuditEvent.Action.LOGIN)
    assert event.seq == 1 and event.prev_hash == GENESIS_HASH


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
        f"UPDATE {db_triggers.EVENTS} SET reason = 'edited'",
        f"DELETE FROM {db_triggers.EVENTS}",
    ],
)
def test_the_database_itself_refuses_update_and_delete(staff, sql):
    audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.exclude(reason="edited").count() == AuditEvent.objects.count()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_truncate(staff):
    audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {db_triggers.EVENTS}")


def test_an_edit_made_behind_the_triggers_back_is_detected(staff):
    for _ in range(3):
        audit_record(actor=staff, action=AuditEvent.Action.VIEWED)
    target = AuditEvent.objects.order_by("-id")[1]
    with connection.cursor() as cursor:
        for statement in db_triggers.drop_statements(connection.vendor):
            cursor.execute(statement)
        cursor.execute(
            f"UPDATE {db_triggers.EVENTS} SET action = 'approved' WHERE id = %s", [target.pk]
        )
        for statement in db_triggers.create_statements(connection.vendor):
            cursor.execute(statement)
    report = audit_chain_verify()
    assert not report.ok
    assert report.broken_seq == target.seq
    assert "edited" in report.problem


def _append_in_threads(*, stores, per_thread: int, actor) -> list[Exception]:
    errors: list[Exception] = []
    barrier = threading.Barrier(len(stores))

    def append_many(store):
        try:
            barrier.wait()
            for _ in range(per_thread):
                audit_record(actor=actor, action=AuditEvent.Action.VIEWED, store=store)
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=append_many, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("distinct_stores", [True, False], ids=["eight-stores", "one-store"])
def test_concurrent_appends_never_fork_or_lose_an_event(distinct_stores):
    """Eight connections append at once, to eight chains or all to one: every event is there,
    each chain runs 1..n with every link intact, and no two events share a predecessor."""
    actor = make_user(roles.COUNTER_STAFF, username="appender")
    stores = [make_store(code=f"T{number}", name=f"Store {number}") for number in range(8)]
    if not distinct_stores:
        stores = [stores[0]] * 8
    before = AuditEvent.objects.count()
    errors = _append_in_threads(stores=stores, per_thread=12, actor=actor)
    assert errors == []
    assert AuditEvent.objects.count() == before + 8 * 12
    report = audit_chain_verify()
    assert report.ok, report.problem
    links = list(AuditEvent.objects.values_list("chain", "prev_hash"))
    assert len(links) == len(set(links)), "two events link to the same predecessor: a fork"
    for head in AuditChain.objects.all():
        assert AuditEvent.objects.filter(chain=head.chain).count() == head.seq
