"""verify_audit catches every way someone with the database owner's credentials could tamper
with the log behind the triggers' back: an edit, a deletion, an insertion, a reordering, and,
thanks to the signed checkpoints, an edit followed by a re-hash of everything after it, a
deleted-and-renumbered event and a cut tail; and a checkpoint that is forged, altered, signed
with another key or deleted."""

import io
from contextlib import contextmanager

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import connection

from registrations import db_triggers
from registrations.audit import audit_chain_check, audit_record, checkpoint_seal, event_hash
from registrations.audit.checkpoints import checkpoint_message, merkle_root
from registrations.models import AuditChain, AuditCheckpoint, AuditEvent
from tests.factories import run_verify_audit

pytestmark = pytest.mark.django_db

EVENTS = connection.ops.quote_name(db_triggers.EVENTS)
CHECKPOINTS = connection.ops.quote_name(db_triggers.CHECKPOINTS)
HEADS = connection.ops.quote_name(AuditChain._meta.db_table)
SHIFT = 10**9


@pytest.fixture
def log(store, staff):
    """Six events of one store, positions 1 to 6 of its chain (inside the test's transaction
    every event follows the first one's chain)."""
    events = [
        audit_record(actor=staff, action="viewed", store=store, reason=f"event {n}")
        for n in range(6)
    ]
    assert [event.seq for event in events] == [1, 2, 3, 4, 5, 6]
    return events


@contextmanager
def triggers_lifted():
    """What someone with the owner's credentials could do: drop the triggers, tamper, put them
    back. (The app's own role cannot: tests/test_audit_db_role.py.)"""
    with connection.cursor() as cursor:
        for statement in db_triggers.drop_statements(connection.vendor):
            cursor.execute(statement)
        yield cursor
        for statement in db_triggers.create_statements(connection.vendor):
            cursor.execute(statement)


def rehash_from(cursor, chain: int, seq: int) -> None:
    """Recompute every hash of the chain from `seq` on, as a forger who knows the algorithm
    would, and move the chain's head to match: the chain alone then looks intact."""
    events = list(AuditEvent.objects.filter(chain=chain, seq__gte=seq).order_by("seq"))
    previous = AuditEvent.objects.filter(chain=chain, seq=seq - 1).first()
    prev_hash = previous.hash if previous else "0" * 64
    for event in events:
        event.prev_hash = prev_hash
        event.hash = event_hash(event)
        cursor.execute(
            f"UPDATE {EVENTS} SET prev_hash = %s, hash = %s WHERE id = %s",
            [event.prev_hash, event.hash, event.pk],
        )
        prev_hash = event.hash
    last = events[-1] if events else previous
    cursor.execute(
        f"UPDATE {HEADS} SET seq = %s, prev_hash = %s, hash = %s WHERE chain = %s",
        [last.seq, last.prev_hash, last.hash, chain],
    )


def test_an_intact_log_verifies_and_the_check_is_recorded(log):
    checkpoint_seal()
    code, out, err = run_verify_audit()
    assert code == 0, err
    assert "OK: 6 events in 1 chains" in out
    assert "1 signed checkpoints verified" in out
    chain = log[0].chain
    assert f"HEAD chain={chain} seq=6 hash={log[-1].hash}" in out
    verified = AuditEvent.objects.get(action=AuditEvent.Action.VERIFIED)
    assert verified.details["ok"] is True and verified.details["checked"] == 6


# Tampering the chain alone catches --------------------------------------------------------


def edit(cursor, log) -> str:
    cursor.execute(f"UPDATE {EVENTS} SET reason = 'nothing happened' WHERE id = %s", [log[2].pk])
    return "position 3: was edited"


def delete(cursor, log) -> str:
    cursor.execute(f"DELETE FROM {EVENTS} WHERE id = %s", [log[2].pk])
    return "position 3 is missing"


def insert_forged(cursor, log) -> str:
    """A forger who knows the algorithm: a new event at position 4 that links to #3 with a right
    hash of its own; the genuine event after it no longer links."""
    chain = log[0].chain
    cursor.execute(f"UPDATE {EVENTS} SET seq = seq + {SHIFT} WHERE chain = %s AND seq > 3", [chain])
    cursor.execute(
        f"UPDATE {EVENTS} SET seq = seq - {SHIFT - 1} WHERE chain = %s AND seq > {SHIFT}", [chain]
    )
    forged = AuditEvent.objects.get(pk=log[2].pk)
    forged.pk = None
    forged._state.adding = True
    forged.seq, forged.reason, forged.prev_hash = 4, "forged", log[2].hash
    forged.hash = event_hash(forged)
    forged.save(force_insert=True)
    # A careful forger moves the head on too, so that appends go on without an error.
    cursor.execute(f"UPDATE {HEADS} SET seq = 7 WHERE chain = %s", [chain])
    return "position 5: does not link"


def swap(cursor, log) -> str:
    chain = log[0].chain
    cursor.execute(f"UPDATE {EVENTS} SET seq = {SHIFT} WHERE chain = %s AND seq = 3", [chain])
    cursor.execute(f"UPDATE {EVENTS} SET seq = 3 WHERE chain = %s AND seq = 4", [chain])
    cursor.execute(f"UPDATE {EVENTS} SET seq = 4 WHERE chain = %s AND seq = {SHIFT}", [chain])
    return "position 3: does not link"


def cut_tail_only(cursor, log) -> str:
    cursor.execute(f"DELETE FROM {EVENTS} WHERE id IN (%s, %s)", [log[4].pk, log[5].pk])
    return "positions 5 to 6 are missing from the end"


@pytest.mark.parametrize(
    "tamper",
    [edit, delete, insert_forged, swap, cut_tail_only],
    ids=["edited", "deleted", "forged insertion", "swapped", "tail cut"],
)
def test_tampering_behind_the_triggers_is_caught_by_the_chain(log, tamper):
    with triggers_lifted() as cursor:
        expected = tamper(cursor, log)
    code, _, err = run_verify_audit()
    assert code == 1
    assert expected in err, err


# Tampering only the signed checkpoints catch -----------------------------------------------


def edit_and_rehash(cursor, log) -> str:
    cursor.execute(f"UPDATE {EVENTS} SET reason = 'nothing happened' WHERE id = %s", [log[2].pk])
    rehash_from(cursor, log[0].chain, 3)
    return "has another hash now"


def delete_and_renumber(cursor, log) -> str:
    chain = log[0].chain
    cursor.execute(f"DELETE FROM {EVENTS} WHERE id = %s", [log[2].pk])
    cursor.execute(f"UPDATE {EVENTS} SET seq = seq - 1 WHERE chain = %s AND seq > 3", [chain])
    rehash_from(cursor, chain, 3)
    # Position 6 is gone, or (once the check itself is recorded) holds another event.
    return "position 6"


def cut_tail_and_head(cursor, log) -> str:
    cursor.execute(f"DELETE FROM {EVENTS} WHERE id IN (%s, %s)", [log[4].pk, log[5].pk])
    rehash_from(cursor, log[0].chain, 5)
    return "no longer exists"


def forge_and_rehash(cursor, log) -> str:
    """Insert a forged event at position 4 and re-hash all that follows."""
    insert_forged(cursor, log)
    rehash_from(cursor, log[0].chain, 4)
    return "has another hash now"


@pytest.mark.parametrize(
    "tamper",
    [edit_and_rehash, delete_and_renumber, cut_tail_and_head, forge_and_rehash],
    ids=["edited and re-hashed", "deleted and renumbered", "tail cut", "forged and re-hashed"],
)
def test_tampering_the_chain_hides_is_caught_by_the_signed_checkpoint(log, tamper):
    checkpoint_seal()
    with triggers_lifted() as cursor:
        expected = tamper(cursor, log)
    chain_only = audit_chain_check(actor=None)
    assert chain_only.chain.ok, "the chain alone looks intact after this tampering"
    code, _, err = run_verify_audit()
    assert code == 1
    assert "checkpoint 1" in err and expected in err, err


def test_each_checkpoint_is_checked_not_only_the_newest(log, staff, store):
    """A re-hash between two checkpoints is signed by the second one: the first still sees it."""
    checkpoint_seal()
    with triggers_lifted() as cursor:
        edit_and_rehash(cursor, log)
    audit_record(actor=staff, action="viewed", store=store)
    assert checkpoint_seal().number == 2
    code, _, err = run_verify_audit()
    assert code == 1
    assert "checkpoint 1: chain" in err and "checkpoint 2" not in err, err


def test_an_anchor_still_vouches_for_events_newer_than_the_last_checkpoint(log):
    code, out, _ = run_verify_audit()
    [head] = [line for line in out.splitlines() if line.startswith("HEAD ")]
    with triggers_lifted() as cursor:
        edit_and_rehash(cursor, log)
    code, _, err = run_verify_audit("--anchor", head)
    assert code == 1
    assert f"anchor {log[0].chain}:6 does not match" in err


# Tampering with the checkpoints themselves --------------------------------------------------


@pytest.fixture
def sealed(log, staff, store):
    """Two checkpoints over the log."""
    checkpoint_seal()
    audit_record(actor=staff, action="viewed", store=store)
    checkpoint_seal()
    return list(AuditCheckpoint.objects.order_by("number"))


def test_a_checkpoint_with_a_bad_signature_is_reported(sealed):
    forged = "00" * 64
    with triggers_lifted() as cursor:
        cursor.execute(f"UPDATE {CHECKPOINTS} SET signature = %s WHERE number = 2", [forged])
    code, _, err = run_verify_audit()
    assert code == 1
    assert "checkpoint 2: its signature does not verify" in err


def test_a_checkpoint_whose_heads_were_altered_is_reported(sealed):
    heads = [[chain, seq + 1, digest] for chain, seq, digest in sealed[1].heads]
    import json

    with triggers_lifted() as cursor:
        cursor.execute(f"UPDATE {CHECKPOINTS} SET heads = %s WHERE number = 2", [json.dumps(heads)])
    code, _, err = run_verify_audit()
    assert code == 1
    assert "checkpoint 2: its heads do not give its Merkle root" in err


def test_a_checkpoint_re_signed_with_another_key_is_reported(sealed):
    """A forger without the audit key signs a new root with a key of their own."""
    other = Ed25519PrivateKey.generate()
    latest = sealed[1]
    latest.root = merkle_root(latest.heads)
    signature = other.sign(checkpoint_message(latest)).hex()
    public = other.public_key().public_bytes_raw().hex()
    with triggers_lifted() as cursor:
        cursor.execute(
            f"UPDATE {CHECKPOINTS} SET signature = %s, public_key = %s WHERE number = 2",
            [signature, public],
        )
    code, _, err = run_verify_audit()
    assert code == 1
    assert "checkpoint 2: is signed by a key that is not trusted" in err


def test_a_checkpoint_signed_by_a_key_that_is_no_longer_trusted_is_reported(sealed, settings):
    """After a key change the old public key must be listed to keep its checkpoints valid."""
    settings.AUDIT_SIGNING_KEY = "b3RoZXItYXVkaXQtc2lnbmluZy1rZXktMzItYnl0ZXM="
    code, _, err = run_verify_audit()
    assert code == 1
    assert "is signed by a key that is not trusted" in err
    old_public = sealed[0].public_key
    settings.AUDIT_TRUSTED_PUBLIC_KEYS = [old_public]
    code, _, err = run_verify_audit()
    assert code == 0, err


def test_a_deleted_checkpoint_is_reported(sealed, staff, store):
    audit_record(actor=staff, action="viewed", store=store)
    checkpoint_seal()
    with triggers_lifted() as cursor:
        cursor.execute(f"DELETE FROM {CHECKPOINTS} WHERE number = 2")
    code, _, err = run_verify_audit()
    assert code == 1
    assert "checkpoint 2 is missing" in err


def test_the_database_refuses_to_change_or_delete_a_checkpoint(sealed):
    from django.db import DatabaseError, transaction

    for sql in (f"UPDATE {CHECKPOINTS} SET root = 'x'", f"DELETE FROM {CHECKPOINTS}"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql)
    assert AuditCheckpoint.objects.count() == 2


def test_sealing_twice_without_new_events_writes_one_checkpoint(log):
    assert checkpoint_seal().number == 1
    assert checkpoint_seal() is None
    assert AuditCheckpoint.objects.count() == 1


def test_seal_audit_refuses_to_sign_heads_that_are_not_events(log):
    with triggers_lifted() as cursor:
        cursor.execute(f"DELETE FROM {EVENTS} WHERE id = %s", [log[5].pk])
    out, err = io.StringIO(), io.StringIO()
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Not sealed"):
        call_command("seal_audit", stdout=out, stderr=err)
    assert AuditCheckpoint.objects.count() == 0


def test_seal_audit_prints_the_checkpoint_and_the_public_key(log):
    out = io.StringIO()
    call_command("seal_audit", stdout=out)
    assert "Checkpoint #1: 1 chains, root " in out.getvalue()
    out = io.StringIO()
    call_command("seal_audit", "--public-key", stdout=out)
    assert out.getvalue().strip() == AuditCheckpoint.objects.get().public_key
