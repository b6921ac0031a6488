"""verify_audit recomputes the chain and names the first broken link, however the log was
tampered with behind the triggers' back; admins run the same check from the browser. The chain
alone cannot show a log cut short or re-hashed from an edit onward: an anchor recorded outside
simreg can."""

import hashlib
import io
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from registrations import db_triggers
from registrations.audit import audit_record, canonical_form, event_hash
from registrations.models import AuditEvent

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = (
    "seq",
    "at",
    "actor_id",
    "actor_username",
    "action",
    "registration_reference",
    "store_code",
    "ip",
    "user_agent",
    "reason",
    "fields",
    "details",
    "prev_hash",
    "hash",
)
SHIFT = 10**9


@pytest.fixture
def chain(staff):
    """Six events, #1 to #6."""
    return [audit_record(actor=staff, action="viewed", reason=f"event {n}") for n in range(6)]


@contextmanager
def triggers_lifted():
    """What someone with database access could do: drop the triggers, tamper, put them back."""
    with connection.cursor() as cursor:
        for statement in db_triggers.drop_statements(connection.vendor):
            cursor.execute(statement)
        yield cursor
        for statement in db_triggers.create_statements(connection.vendor):
            cursor.execute(statement)


def q(name: str) -> str:
    return connection.ops.quote_name(name)


TABLE = q(db_triggers.TABLE)


def edit(cursor, chain) -> int:
    cursor.execute(f"UPDATE {TABLE} SET reason = 'nothing happened' WHERE seq = 3")
    return 3


def delete(cursor, chain) -> int:
    cursor.execute(f"DELETE FROM {TABLE} WHERE seq = 3")
    return 3


def _make_room_after(cursor, seq: int) -> None:
    # Two steps, so that no intermediate state repeats a seq (it is unique).
    cursor.execute(f"UPDATE {TABLE} SET seq = seq + {SHIFT} WHERE seq > %s", [seq])
    cursor.execute(f"UPDATE {TABLE} SET seq = seq - {SHIFT - 1} WHERE seq > {SHIFT}")


def _insert_copy_of(cursor, source_seq: int, *, seq: int, reason: str, prev: str, digest: str):
    """Insert a copy of an event under a new number, reason and hashes."""
    kept = [q(c) for c in COLUMNS if c not in {"seq", "reason", "prev_hash", "hash"}]
    cursor.execute(
        f"INSERT INTO {TABLE} ({', '.join(kept)}, seq, reason, prev_hash, {q('hash')}) "
        f"SELECT {', '.join(kept)}, %s, %s, %s, %s FROM {TABLE} WHERE seq = %s",
        [seq, reason, prev, digest, source_seq],
    )


def insert_forged(cursor, chain) -> int:
    """A forger who knows the algorithm: the new event links to #3 and its own hash is right."""
    third = chain[2]
    forged_hash = hashlib.sha256(
        canonical_form(
            seq=4,
            at=third.at,
            actor_id=third.actor_id,
            actor_username=third.actor_username,
            action=third.action,
            registration_reference=third.registration_reference,
            store_code=third.store_code,
            ip=third.ip,
            user_agent=third.user_agent,
            reason="forged",
            fields=third.fields,
            details=third.details,
            prev_hash=third.hash,
        )
    ).hexdigest()
    _make_room_after(cursor, 3)
    _insert_copy_of(cursor, 3, seq=4, reason="forged", prev=third.hash, digest=forged_hash)
    return 5  # the genuine event after it no longer links


def insert_crude(cursor, chain) -> int:
    _make_room_after(cursor, 3)
    _insert_copy_of(cursor, 3, seq=4, reason="forged", prev=chain[2].hash, digest="f" * 64)
    return 4


def reorder(cursor, chain) -> int:
    cursor.execute(f"UPDATE {TABLE} SET seq = {SHIFT} WHERE seq = 3")
    cursor.execute(f"UPDATE {TABLE} SET seq = 3 WHERE seq = 4")
    cursor.execute(f"UPDATE {TABLE} SET seq = 4 WHERE seq = {SHIFT}")
    return 3


def reorder_by_time_and_number(cursor, chain) -> int:
    """Renumber the last event as the first one after #2 and the others after it."""
    cursor.execute(f"UPDATE {TABLE} SET seq = {SHIFT} WHERE seq = 6")
    _make_room_after(cursor, 2)
    cursor.execute(f"UPDATE {TABLE} SET seq = 3 WHERE seq = {SHIFT}")
    return 3


TAMPERING = {
    "edited": edit,
    "deleted": delete,
    "inserted with a valid-looking hash": insert_forged,
    "inserted with a made-up hash": insert_crude,
    "two events swapped": reorder,
    "an event moved": reorder_by_time_and_number,
}


def run_verify(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        return exc.code, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def head_anchor(out: str) -> str:
    """The anchor an admin records from verify_audit's output: SEQ:HASH of its HEAD line."""
    [line] = [line for line in out.splitlines() if line.startswith("HEAD ")]
    seq, digest = line.removeprefix("HEAD seq=").split(" hash=")
    return f"{seq}:{digest}"


def test_an_intact_chain_verifies_and_the_check_is_recorded(chain):
    code, out, _ = run_verify()
    assert code == 0
    assert out.splitlines() == [
        "OK: 6 events, chain intact",
        f"HEAD seq=6 hash={chain[-1].hash}",
    ]
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == AuditEvent.Action.VERIFIED
    assert event.details == {
        "ok": True,
        "checked": 6,
        "broken_seq": None,
        "head_seq": 6,
        "head_hash": chain[-1].hash,
    }
    # The check itself chains on, and becomes the head.
    assert run_verify()[1].splitlines() == [
        "OK: 7 events, chain intact",
        f"HEAD seq=7 hash={event.hash}",
    ]


@pytest.mark.parametrize("tamper", TAMPERING.values(), ids=TAMPERING.keys())
def test_tampering_behind_the_triggers_is_caught_at_the_first_broken_link(chain, tamper):
    with triggers_lifted() as cursor:
        broken = tamper(cursor, chain)
    code, out, err = run_verify()
    assert code == 1
    assert out == ""  # no HEAD to record from a broken chain
    assert err.startswith(f"BROKEN at event #{broken}: ")
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == AuditEvent.Action.VERIFIED
    assert event.details["ok"] is False
    assert event.details["broken_seq"] == broken


def test_the_triggers_are_back_after_tampering(chain):
    with triggers_lifted() as cursor:
        edit(cursor, chain)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}")


# Anchors: what the chain alone cannot show ------------------------------------------------------


def truncate_from(cursor, seq: int) -> None:
    """Delete the newest events, from `seq` on: what is left is a shorter, intact chain."""
    cursor.execute(f"DELETE FROM {TABLE} WHERE seq >= %s", [seq])


def rewrite_from(cursor, seq: int, reason: str) -> None:
    """Edit event `seq`, then recompute its hash and every later one so that they link again."""
    cursor.execute(f"UPDATE {TABLE} SET reason = %s WHERE seq = %s", [reason, seq])
    previous = AuditEvent.objects.get(seq=seq - 1).hash
    for event in AuditEvent.objects.filter(seq__gte=seq).order_by("seq"):
        event.prev_hash = previous
        event.hash = event_hash(event)
        cursor.execute(
            f"UPDATE {TABLE} SET prev_hash = %s, {q('hash')} = %s WHERE seq = %s",
            [event.prev_hash, event.hash, event.seq],
        )
        previous = event.hash


def test_truncating_the_newest_events_passes_the_chain_check_alone_but_fails_the_anchor(chain):
    code, out, _ = run_verify()
    assert code == 0
    anchor = head_anchor(out)
    assert anchor == f"6:{chain[-1].hash}"
    with triggers_lifted() as cursor:
        truncate_from(cursor, 5)  # events #5 and #6, and the check's own event #7

    # The limitation: a log cut short is still an intact chain.
    code, out, _ = run_verify()
    assert code == 0
    assert out.splitlines()[0] == "OK: 4 events, chain intact"

    code, out, err = run_verify("--anchor", anchor)
    assert code == 1
    assert out == ""
    assert err.strip() == (
        "BROKEN: anchor #6 does not match: the log was truncated or re-written "
        "(event #6 no longer exists)"
    )
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == AuditEvent.Action.VERIFIED
    assert event.details["ok"] is False
    assert event.details["anchors"] == [{"seq": 6, "hash": chain[-1].hash, "matches": False}]


def test_re_hashing_the_log_from_an_edit_onward_passes_the_chain_check_alone_but_fails_the_anchor(
    chain,
):
    code, out, _ = run_verify()
    head = head_anchor(out)
    before_the_edit = f"2:{chain[1].hash}"
    with triggers_lifted() as cursor:
        rewrite_from(cursor, 3, "nothing happened")

    # The limitation: a forger with database rights re-hashes everything after the edit.
    code, out, _ = run_verify()
    assert code == 0
    assert out.splitlines()[0] == "OK: 7 events, chain intact"
    assert AuditEvent.objects.get(seq=3).reason == "nothing happened"

    code, out, err = run_verify("--anchor", before_the_edit, "--anchor", head)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1  # the anchor before the edit still matches
    assert lines[0].startswith(
        "BROKEN: anchor #6 does not match: the log was truncated or re-written (event #6 now has "
        "the hash "
    )
    assert AuditEvent.objects.get(seq=6).hash in lines[0]


def test_anchors_that_match_are_confirmed_before_the_new_head(chain):
    _, out, _ = run_verify()
    first = head_anchor(out)
    code, out, err = run_verify("--anchor", first, "--anchor", f"HEAD seq=2 hash={chain[1].hash}")
    assert code == 0, err
    assert out.splitlines() == [
        "OK: 7 events, chain intact",
        "Anchor #6 matches",
        "Anchor #2 matches",
        f"HEAD seq=7 hash={AuditEvent.objects.get(seq=7).hash}",
    ]


@pytest.mark.parametrize(
    "anchor", ["6", "six:abc", "6:" + "a" * 63, "0:" + "a" * 64, "²:" + "a" * 64, "6:" + "g" * 64]
)
def test_a_malformed_anchor_is_refused_and_nothing_is_checked(chain, anchor):
    with pytest.raises(CommandError, match="--anchor takes SEQ:HASH"):
        call_command("verify_audit", "--anchor", anchor, stdout=io.StringIO())
    assert not AuditEvent.objects.filter(action="verified").exists()


def test_an_anchor_is_for_the_database_not_for_a_file(tmp_path, chain):
    with pytest.raises(CommandError, match="leave out --file"):
        call_command(
            "verify_audit", "--file", str(tmp_path / "a.jsonl"), "--anchor", f"1:{chain[0].hash}"
        )


# From the browser ----------------------------------------------------------------------------


def test_a_compliance_admin_verifies_the_chain_from_the_browser(client, compliance, chain):
    client.force_login(compliance)
    response = client.post(reverse("audit-verify"), follow=True)
    assert response.redirect_chain[-1][0] == reverse("audit-list")
    page = response.content.decode()
    assert "The audit chain is intact: 7 events checked." in page  # six, and the sign-in
    event = AuditEvent.objects.filter(action="verified").get()
    assert event.actor == compliance
    assert event.details["ok"] is True


def test_the_browser_names_the_first_broken_event(client, compliance, chain):
    with triggers_lifted() as cursor:
        delete(cursor, chain)
    client.force_login(compliance)
    page = client.post(reverse("audit-verify"), follow=True).content.decode()
    assert "The audit chain is broken at event #3" in page
    assert "alert-danger" in page


def test_the_browser_shows_the_head_to_record_outside_simreg(client, compliance, chain):
    client.force_login(compliance)  # event #7
    page = client.post(reverse("audit-verify"), follow=True).content.decode()
    head = AuditEvent.objects.get(seq=7)
    assert 'id="audit-head"' in page
    assert "Event #7, hash:" in page
    assert head.hash in page  # in full
    assert f"7:{head.hash}" in page  # the anchor, ready to copy
    assert "Record this anchor outside simreg, for example in the compliance ticket" in page
    # Shown once, right after the check.
    assert 'id="audit-head"' not in client.get(reverse("audit-list")).content.decode()


def test_the_browser_checks_a_recorded_anchor(client, compliance, chain):
    client.force_login(compliance)
    anchor = f"6:{chain[-1].hash}"
    page = client.post(reverse("audit-verify"), {"anchor": anchor}, follow=True)
    page = page.content.decode()
    assert "The audit chain is intact: 7 events checked." in page
    assert "Anchor #6 matches" in page
    event = AuditEvent.objects.filter(action="verified").get()
    assert event.details["anchors"] == [{"seq": 6, "hash": chain[-1].hash, "matches": True}]

    with triggers_lifted() as cursor:
        truncate_from(cursor, 5)
    response = client.post(reverse("audit-verify"), {"anchor": anchor}, follow=True)
    page = response.content.decode()
    # One result, a failure: the chain's links hold, the anchor does not.
    assert page.count('role="alert"') == 1
    assert "alert-danger" in page and "alert-success" not in page
    assert "The audit chain is intact" not in page
    assert (
        "The links of the audit chain are intact (4 events checked), but anchor #6 does not "
        "match: event #6 no longer exists. The log was truncated or re-written after the anchor "
        "was recorded, or the anchor was copied wrongly." in page
    )
    assert 'id="audit-head"' not in page  # nothing to record from a log that fails its anchor


def test_an_anchor_with_another_hash_is_a_single_failure_not_a_success(client, compliance, chain):
    client.force_login(compliance)
    wrong = "0" * 64
    response = client.post(reverse("audit-verify"), {"anchor": f"6:{wrong}"}, follow=True)
    page = response.content.decode()
    assert page.count('role="alert"') == 1
    assert "alert-danger" in page and "alert-success" not in page
    assert "The audit chain is intact" not in page
    assert (
        "The links of the audit chain are intact (7 events checked), but anchor #6 does not "
        f"match: event #6 now has the hash {chain[-1].hash}." in page
    )
    assert "or the anchor was copied wrongly." in page
    assert 'id="audit-head"' not in page
    event = AuditEvent.objects.filter(action="verified").get()
    assert event.details["ok"] is False


def test_an_anchor_checked_against_a_broken_chain_adds_its_own_failure(client, compliance, chain):
    with triggers_lifted() as cursor:
        delete(cursor, chain)
    client.force_login(compliance)
    response = client.post(reverse("audit-verify"), {"anchor": f"3:{chain[2].hash}"}, follow=True)
    page = response.content.decode()
    assert "The audit chain is broken at event #3" in page
    assert "Anchor #3 does not match" in page
    assert "alert-success" not in page and "The links of the audit chain are intact" not in page


def test_the_verify_form_carries_exactly_one_csrf_token(client, compliance):
    client.force_login(compliance)
    page = client.get(reverse("audit-list")).content.decode()
    form = page.split('id="audit-verify"', 1)[1].split("</form>", 1)[0]
    assert form.count('name="csrfmiddlewaretoken"') == 1


def test_the_browser_refuses_a_malformed_anchor_next_to_the_field(client, compliance, chain):
    client.force_login(compliance)
    before = AuditEvent.objects.count()
    response = client.post(reverse("audit-verify"), {"anchor": "6:not-a-hash"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="error_1_id_anchor"' in page
    assert "Enter the event number, a colon and the 64-character hash" in page
    assert 'value="6:not-a-hash"' in page  # what was typed is kept
    assert AuditEvent.objects.count() == before  # nothing was verified, nothing was listed


def test_verification_is_a_post_only(client, compliance):
    client.force_login(compliance)
    assert client.get(reverse("audit-verify")).status_code == 405
    assert not AuditEvent.objects.filter(action="verified").exists()


# An exported file, on its own ------------------------------------------------------------------


def export_to(path: Path, *args: str) -> None:
    call_command("export_audit", "--output", str(path), *args, stdout=io.StringIO())


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_verify_audit_checks_an_exported_file_without_recording_anything(tmp_path, chain, fmt):
    path = tmp_path / f"audit.{fmt}"
    export_to(path, "--format", fmt)
    before = AuditEvent.objects.count()
    out = io.StringIO()
    call_command("verify_audit", "--file", str(path), "--complete", stdout=out)
    assert out.getvalue().strip() == "OK: 6 events, chain intact from event #1 to #6"
    assert AuditEvent.objects.count() == before


def test_verify_audit_says_what_a_filtered_file_could_and_could_not_check(tmp_path, staff):
    for action in ("viewed", "viewed", "login", "viewed"):
        audit_record(actor=staff, action=action)
    path = tmp_path / "viewed.jsonl"
    export_to(path, "--action", "viewed")
    out = io.StringIO()
    call_command("verify_audit", "--file", str(path), stdout=out)
    assert "3 events from #1 to #4, every hash intact; 1 links checked" in out.getvalue()
    assert "1 gaps" in out.getvalue()


def test_verify_audit_names_the_broken_event_of_a_tampered_file(tmp_path, chain):
    path = tmp_path / "audit.jsonl"
    export_to(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace('"event 3"', '"event three"')
    path.write_text("".join(lines))
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_:
        call_command("verify_audit", "--file", str(path), stderr=err)
    assert exit_.value.code == 1
    assert err.getvalue().startswith("BROKEN at event #4: ")


def test_an_exported_file_is_verified_on_a_machine_without_the_database(tmp_path, chain):
    path = tmp_path / "audit.csv"
    export_to(path, "--format", "csv")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "FIELD_", "BLIND_", "DATABASE_", "SIMREG_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="simreg.settings",
        SIMREG_ENV_FILE=os.devnull,
        DJANGO_SECRET_KEY="another-machine-" + "k" * 40,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        BLIND_INDEX_KEY="another-machine",
        # Nothing listens there: any database access would fail.
        DATABASE_URL="postgres://nobody:nothing@127.0.0.1:9/none",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "verify_audit", "--file", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 6 events, chain intact")


# The stand-alone verifiers documented in README ("Export format and independent verification"):
# plain Python, no simreg, no Django.
STAND_ALONE_JSONL = """
import hashlib, json, sys

previous = None
for line in open(sys.argv[1], encoding="utf-8"):
    event = json.loads(line)
    claimed = event.pop("hash")
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if hashlib.sha256(canonical.encode()).hexdigest() != claimed:
        sys.exit(f"event #{event['seq']} was changed")
    if previous and event["seq"] == previous[0] + 1 and event["prev_hash"] != previous[1]:
        sys.exit(f"event #{event['seq']} does not link to event #{previous[0]}")
    if event["seq"] == 1 and event["prev_hash"] != "0" * 64:
        sys.exit("event #1 does not start the chain")
    previous = (event["seq"], claimed)
print("OK")
"""

STAND_ALONE_CSV = """
import csv, hashlib, json, sys

previous = None
for row in csv.DictReader(open(sys.argv[1], encoding="utf-8-sig", newline="")):
    row = {name: cell[1:] if cell.startswith("'") else cell for name, cell in row.items()}
    claimed = row.pop("hash")
    event = dict(
        row,
        seq=int(row["seq"]),
        actor_id=int(row["actor_id"]) if row["actor_id"] else None,
        ip=row["ip"] or None,
        fields=json.loads(row["fields"]),
        details=json.loads(row["details"]),
    )
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if hashlib.sha256(canonical.encode()).hexdigest() != claimed:
        sys.exit(f"event #{event['seq']} was changed")
    if previous and event["seq"] == previous[0] + 1 and event["prev_hash"] != previous[1]:
        sys.exit(f"event #{event['seq']} does not link to event #{previous[0]}")
    previous = (event["seq"], claimed)
print("OK")
"""


@pytest.mark.parametrize(
    ("fmt", "script"), [("jsonl", STAND_ALONE_JSONL), ("csv", STAND_ALONE_CSV)]
)
def test_the_documented_stand_alone_verifier_checks_an_export(tmp_path, staff, fmt, script):
    for reason in ("=cmd|' /C calc'!A0", "-1", "'quoted", "客戶 𠮷", "line\nbreak"):
        audit_record(actor=staff, action="revealed", reason=reason, details={"n": 1.5})
    audit_record(actor=None, actor_username="ghost", action="login_failed")
    path = tmp_path / f"audit.{fmt}"
    export_to(path, "--format", fmt)
    verifier = tmp_path / "verify.py"
    verifier.write_text(script)

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-I", str(verifier), str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = run()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "OK"
    path.write_bytes(path.read_bytes().replace(b"ghost", b"ghast"))
    result = run()
    assert result.returncode != 0
    assert "event #6 was changed" in result.stderr
