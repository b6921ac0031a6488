"""rotate_keys re-encrypts everything under a new first key, so that the old key can go; a new
blind-index key gets every index recomputed."""

import fcntl
import io
import os
import re
import signal
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from registrations import crypto, documents
from registrations.checks import canary_fields, key_problems
from registrations.models import (
    AuditEvent,
    DocumentCopy,
    KeyCanary,
    Person,
    Registration,
)
from registrations.selectors import registration_list_by_document
from registrations.services import keys as keys_rotation
from tests.factories import (
    CUSTOMER,
    PDF,
    PERSON_ENCRYPTED_FIELDS,
    PNG,
    make_approved,
    make_document_copy,
    make_pending_change,
    make_person,
    make_registration,
    make_status_change,
)
from tests.storage import stored_bytes, stored_names
from tests.test_startup import ROOT, database_url

pytestmark = pytest.mark.django_db

NEW_KEY = Fernet.generate_key().decode()
REMOVABLE = (
    "All data decrypts with the first key alone: the other keys can now be removed from "
    "FIELD_ENCRYPTION_KEYS."
)


@pytest.fixture
def old_key(settings):
    keys = settings.FIELD_ENCRYPTION_KEY
    return keys[0] if isinstance(keys, list) else keys


@pytest.fixture
def canary(db):
    """The start-up canary, written with the keys and index width in force (as the migrations
    do)."""
    if not KeyCanary.objects.exists():
        KeyCanary.objects.create(**canary_fields())
    return KeyCanary.objects.order_by("-pk").first()


@pytest.fixture
def records(canary, private_storage, store, staff, supervisor):
    """Everything that holds ciphertext, written with the old key."""
    registration = make_approved(
        store=store, created_by=staff, reviewer=supervisor, comment="Customer 陳大文 asked twice"
    )
    make_status_change(
        registration,
        from_status="pending",
        to_status="approved",
        actor=supervisor,
        comment="Checked the passport of CHAN Tai Man",
    )
    make_pending_change(
        registration,
        requested_by=staff,
        new={"address": "1 Queen's Road Central", "email": "chan@example.com"},
    )
    copies = [
        make_document_copy(registration, data=PNG),
        make_document_copy(registration, data=PDF),
    ]
    return registration, copies


def raw_values(table: str, column: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {connection.ops.quote_name(column)} FROM {table}")
        return [row[0] for row in cursor.fetchall() if row[0] is not None]


def person_rows_under_first_key() -> int:
    rows = 0
    for pk in Person.objects.values_list("pk", flat=True):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT document_number, name_en, address FROM registrations_person WHERE id = %s",
                [pk],
            )
            rows += all(crypto.decrypts_with_primary_key(v) for v in cursor.fetchone())
    return rows


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out)
    return out.getvalue()


def test_after_rotation_the_old_key_can_be_removed(settings, old_key, records):
    registration, copies = records
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY]
    assert key_problems(), "the new key alone cannot read data written with the old one"

    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    output = rotate()
    assert re.search(r"^Person: \d+/\d+$", output, re.MULTILINE)
    assert re.search(r"^DocumentCopy files: 2/2$", output, re.MULTILINE)
    assert output.rstrip().endswith(REMOVABLE)

    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY]
    assert key_problems() == []
    registration = Registration.objects.select_related("customer").get(pk=registration.pk)
    customer = registration.customer
    assert {name: getattr(customer, name) for name in CUSTOMER} == CUSTOMER
    assert str(customer.date_of_birth) == "1990-05-17"
    assert registration.comment == "Customer 陳大文 asked twice"
    assert registration.history.get().comment == "Checked the passport of CHAN Tai Man"
    change = registration.changes.get()
    assert (change.new_address, change.new_email) == ("1 Queen's Road Central", "chan@example.com")
    assert [documents.read_decrypted(copy.stored_name) for copy in copies] == [PNG, PDF]


def test_rotation_changes_no_plaintext_and_no_timestamp(settings, old_key, records):
    registration, copies = records
    updated_at = Registration.objects.get(pk=registration.pk).updated_at
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    rotate()
    assert Registration.objects.get(pk=registration.pk).updated_at == updated_at
    for column in ("name_en", "document_number", "address"):
        for value in raw_values("registrations_person", column):
            assert value.startswith("gAAAAA")
            assert crypto.decrypts_with_primary_key(value)
    assert stored_names() == {c.stored_name for c in copies}
    for name in stored_names():
        stored = stored_bytes(name)
        assert b"PNG" not in stored and b"%PDF" not in stored
        assert crypto.decrypts_with_primary_key(stored.decode("ascii"))


def test_check_says_the_old_key_is_needed_until_rotation_is_done(settings, old_key, records):
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("rotate_keys", "--check", stdout=out)
    assert exit_.value.code == 1
    assert "still need an older key" in out.getvalue()
    assert "2 document files" in out.getvalue()
    rotate()
    assert rotate("--check").rstrip().endswith(REMOVABLE)


def test_an_interrupted_rotation_continues_where_it_stopped(settings, old_key, canary):
    for _ in range(5):
        make_person()
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    output = rotate("--batch-size", "2", "--limit-batches", "1")
    assert "Person: 2/5" in output
    assert "run rotate_keys again to continue" in output
    assert REMOVABLE not in output
    assert person_rows_under_first_key() == 2
    assert AuditEvent.objects.order_by("-id").first().details["finished"] is False
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY]
    assert key_problems(), "half-way, start-up still refuses to run without the old key"

    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]

    output = rotate("--batch-size", "2")
    assert "Person: 2/5" in output and "Person: 4/5" in output and "Person: 5/5" in output
    assert person_rows_under_first_key() == 5
    assert output.rstrip().endswith(REMOVABLE)
    event = AuditEvent.objects.order_by("-id").first()
    assert event.details["rows"]["Person"] == 3  # the two done before were skipped


def test_rotation_is_an_audit_event_with_what_it_did(settings, old_key, records):
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    rotate()
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == AuditEvent.Action.KEYS_ROTATED
    assert event.user_agent == "manage.py"
    details = event.details
    assert details["mode"] == "rotate" and details["finished"] is True
    assert details["rows"]["Person"] == Person.objects.count()
    assert details["rows"]["Registration"] == Registration.objects.count()
    assert details["rows"]["StatusChange"] == 1
    assert details["rows"]["PendingChange"] == 1
    assert details["rows"]["KeyCanary"] == KeyCanary.objects.count()
    assert details["documents"] == 2
    assert "陳大文" not in str(details)


def test_a_document_with_no_file_is_reported_and_the_rest_rotated(settings, old_key, records):
    registration, copies = records
    documents.delete_stored(copies[0].stored_name)
    purged = make_document_copy(registration)
    documents.delete_stored(purged.stored_name)
    DocumentCopy.objects.filter(pk=purged.pk).update(purged_at=timezone.now())
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    output = rotate()
    assert f"1 document copies have no file on disk (nothing to re-encrypt): #{copies[0].pk}" in (
        output
    )
    assert output.rstrip().endswith(REMOVABLE)
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY]
    assert documents.read_decrypted(copies[1].stored_name) == PDF


def test_a_value_no_key_can_read_stops_the_rotation_naming_the_row(settings, old_key, canary):
    person = make_person()
    with connection.cursor() as cursor:
        stranger = Fernet(Fernet.generate_key()).encrypt(b"written elsewhere").decode()
        cursor.execute(
            "UPDATE registrations_person SET address = %s WHERE id = %s", [stranger, person.pk]
        )
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    with pytest.raises(CommandError, match=rf"Person #{person.pk} address does not decrypt"):
        rotate()
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == "keys_rotated" and event.details["finished"] is False
    assert event.details["state"] == "interrupted"


def test_every_encrypted_column_is_found_without_a_list_to_maintain():
    found = {spec.label: set(spec.columns) for spec in keys_rotation.encrypted_tables()}
    assert found["Person"] == set(PERSON_ENCRYPTED_FIELDS)
    assert found["Registration"] == {"comment"}
    assert found["StatusChange"] == {"comment"}
    assert found["PendingChange"] == {
        "new_address",
        "new_contact_number",
        "new_email",
        "new_document_number",
        "termination_reason",
        "comment",
    }
    assert found["KeyCanary"] == {"token"}


def test_a_new_blind_index_key_gets_every_index_recomputed(settings, canary, store, staff):
    registration = make_registration(store=store, created_by=staff)
    settings.BLIND_INDEX_KEY = "a-new-blind-index-key"
    assert any("BLIND_INDEX_KEY" in problem for problem in key_problems())
    assert registration_list_by_document(document_type="hkid", document_number="A123456(3)") == []

    output = rotate("--reindex", "--batch-size", "1")
    assert "Person blind index: 1/1" in output
    assert "Recomputed 1 blind indexes." in output
    assert key_problems() == []
    found = registration_list_by_document(document_type="hkid", document_number="A123456(3)")
    assert found == [registration]
    event = AuditEvent.objects.order_by("-id").first()
    assert event.details["mode"] == "reindex" and event.details["reindexed"] == 1


def test_an_interrupted_reindex_keeps_the_start_up_check_refusing_the_new_key(
    settings, canary, store, staff
):
    for _ in range(3):
        make_person()
    settings.BLIND_INDEX_KEY = "a-new-blind-index-key"
    rotate("--reindex", "--batch-size", "1", "--limit-batches", "1")
    assert any("BLIND_INDEX_KEY" in problem for problem in key_problems())
    rotate("--reindex", "--batch-size", "1")
    assert key_problems() == []


def test_rotate_keys_skips_the_start_up_check_that_refuses_a_new_index_key():
    from registrations.management.commands.rotate_keys import Command

    assert Command.requires_system_checks == []


# A rotation is recorded when it starts and when it ends --------------------------------------


def rotation_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.KEYS_ROTATED).order_by("id"))


def test_a_rotation_is_recorded_when_it_starts_and_when_it_ends(settings, old_key, records):
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]
    rotate("--batch-size", "100")
    started, ended = rotation_events()
    assert started.details == {"state": "started", "mode": "rotate", "batch_size": 100}
    assert ended.details["state"] == "finished" and ended.details["finished"] is True
    assert ended.details["started_id"] == started.id
    assert started.user_agent == ended.user_agent == "manage.py"


def test_a_rotation_broken_off_is_recorded_as_interrupted(settings, old_key, records):
    settings.FIELD_ENCRYPTION_KEY = [NEW_KEY, old_key]

    def stop(label: str, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        keys_rotation.keys_rotate(progress=stop)
    started, ended = rotation_events()
    assert started.details["state"] == "started"
    assert ended.details["state"] == "interrupted" and ended.details["finished"] is False
    assert ended.details["started_id"] == started.id


@pytest.mark.django_db(transaction=True)
def test_a_killed_rotation_leaves_its_started_event(settings, old_key, canary, tmp_path):
    """Killed outright (no `finally` runs): the event written before the first batch stays."""
    for _ in range(300):
        make_person()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        "DJANGO_SETTINGS_MODULE": "simreg.settings",
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": f"{NEW_KEY},{old_key}",
        "DATABASE_URL": database_url(),
        "SIMREG_PRIVATE_STORAGE": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "manage.py", "rotate_keys", "--batch-size", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE)
    try:
        # A pipe of one page: unread, it stops the command half-way at its next line.
        fcntl.fcntl(process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
        first = process.stdout.readline().decode()
        assert re.match(r"\w+: \d+/\d+$", first.strip()), first
        assert process.poll() is None, "the rotation ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    finally:
        process.kill()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    events = rotation_events()
    assert [event.details["state"] for event in events] == ["started"]
    assert events[0].details["mode"] == "rotate"
