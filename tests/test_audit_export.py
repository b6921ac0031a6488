"""Exports of the audit log: streamed, filtered, recorded, safe in a spreadsheet, and verifiable
from the file alone, events (hashes, links per chain) and signed checkpoints alike."""

import csv
import datetime
import hashlib
import inspect
import io
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command

from registrations.audit import (
    AuditExport,
    AuditFilters,
    Origin,
    audit_export_stream,
    audit_record,
    checkpoint_seal,
    public_key_hex,
    signing_key,
    verify_export,
)
from registrations.models import AuditEvent
from tests.factories import CUSTOMER, make_registration

pytestmark = pytest.mark.django_db

# The documented columns of an export, in this order.
COLUMNS = (
    "id",
    "chain",
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
CONTENT_KEYS = COLUMNS[3:-2]
CHECKPOINT_KEYS = {"number", "at", "heads", "root", "prev_digest", "public_key", "signature"}
GENESIS = "0" * 64
FORMULAS = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "'quoted"]
BROWSER = Origin(ip="10.0.0.9", user_agent="Firefox")


@pytest.fixture
def log(store, staff, supervisor):
    """A small log: a record viewed and decided, a reveal with a reason, sign-ins."""
    registration = make_registration(store=store, created_by=staff)
    events = [
        audit_record(actor=staff, action="login", origin=Origin(ip="10.0.0.1", user_agent="UA")),
        audit_record(
            actor=staff, action="draft_saved", registration=registration, fields=list(CUSTOMER)
        ),
        audit_record(
            actor=supervisor,
            action="revealed",
            registration=registration,
            reason="客戶查詢 𠮷",
            fields=["document_number"],
            details={"note": "line\nbreak", "n": 2},
        ),
        audit_record(actor=supervisor, action="approved", registration=registration),
        audit_record(actor=None, actor_username="ghost", action="login_failed"),
    ]
    return registration, events


def audit_public_keys() -> set[str]:
    return {public_key_hex(signing_key())}


def export_file(fmt: str = "jsonl", *, by=None, **filters) -> bytes:
    """The whole file an export sends, as the service streams it to `by`."""
    export = AuditExport(filters=AuditFilters(**filters), fmt=fmt)
    return b"".join(audit_export_stream(export=export, actor=by, origin=BROWSER))


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def jsonl_lines(data: bytes) -> list[str]:
    return data.decode().splitlines()


def events_of(lines: list[str]) -> list[dict]:
    return [record for record in map(json.loads, lines) if "checkpoint" not in record]


def checkpoints_of(lines: list[str]) -> list[dict]:
    return [record["checkpoint"] for record in map(json.loads, lines) if "checkpoint" in record]


def index_of(lines: list[str], event_id: int) -> int:
    """The line that holds event `event_id`."""
    [index] = [i for i, line in enumerate(lines) if json.loads(line).get("id") == event_id]
    return index


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def documented_hash(event: dict) -> str:
    """An event's hash as the README documents it, from its exported keys."""
    content = hashlib.sha256(canonical({k: event[k] for k in CONTENT_KEYS}).encode()).hexdigest()
    link = f"{event['chain']}:{event['seq']}:{event['prev_hash']}:{content}"
    return hashlib.sha256(link.encode()).hexdigest()


def exported_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).order_by("id"))


def newest_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()


# Streaming, filters and the export's own events -------------------------------------------------


def test_an_export_streams_csv_with_a_header_and_every_event(log):
    export = AuditExport(filters=AuditFilters(), fmt="csv")
    assert export.content_type.startswith("text/csv")
    assert export.filename.startswith("simreg-audit-") and export.filename.endswith(".csv")
    rows = csv_rows(b"".join(audit_export_stream(export=export, actor=None, origin=BROWSER)))
    assert tuple(rows[0]) == COLUMNS
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == sorted(ids)
    assert set(ids) >= {event.id for event in log[1]}


def test_the_export_follows_the_filters_of_the_list(log, supervisor):
    registration, _ = log
    assert AuditExport(filters=AuditFilters(), fmt="jsonl").content_type.startswith(
        "application/jsonl"
    )
    events = events_of(
        jsonl_lines(export_file("jsonl", actor="super", reference=registration.reference))
    )
    assert [e["action"] for e in events] == ["revealed", "approved"]
    assert {e["actor_id"] for e in events} == {supervisor.pk}


def test_each_export_is_recorded_when_it_starts_and_when_it_ends(compliance, log):
    checkpoint = checkpoint_seal()
    newest = newest_id()
    data = export_file("csv", by=compliance, action="approved")
    started, finished = exported_events()
    assert started.actor == finished.actor == compliance
    assert started.ip == finished.ip == "10.0.0.9"
    assert started.details == {
        "state": "started",
        "format": "csv",
        "filters": {"action": "approved"},
        "up_to_id": newest,
        "up_to_checkpoint": checkpoint.number,
    }
    assert finished.details == {
        "state": "finished",
        "format": "csv",
        "filters": {"action": "approved"},
        "up_to_id": newest,
        "up_to_checkpoint": checkpoint.number,
        "rows": 1,
        "complete": True,
        "started_id": started.id,
    }
    assert finished.details["rows"] == len(csv_rows(data)) - 1
    assert finished.id == newest_id()


def test_the_start_is_recorded_before_the_first_byte_leaves(compliance, log):
    newest = newest_id()
    export = AuditExport(filters=AuditFilters(), fmt="jsonl")
    stream = audit_export_stream(export=export, actor=compliance, origin=BROWSER)
    # The stream exists, nothing of it is sent yet: the start is already in the log.
    [started] = exported_events()
    assert started.details["state"] == "started"
    assert started.details["format"] == "jsonl"
    assert started.details["up_to_id"] == newest
    events = events_of(jsonl_lines(b"".join(stream)))
    assert [e["id"] for e in events] == list(
        AuditEvent.objects.filter(id__lte=newest).order_by("id").values_list("id", flat=True)
    )
    started, finished = exported_events()
    assert finished.details["state"] == "finished"
    assert finished.details["rows"] == len(events)


def test_an_export_killed_before_it_ends_leaves_its_start_in_the_log(compliance, log):
    newest = newest_id()
    export = AuditExport(filters=AuditFilters(actor="super"), fmt="csv")
    stream = audit_export_stream(export=export, actor=compliance, origin=BROWSER)
    # A worker killed outright runs no clean-up code: a stream that is never read is the
    # nearest a test comes to it.
    del stream
    [started] = exported_events()
    assert started.details == {
        "state": "started",
        "format": "csv",
        "filters": {"actor": "super"},
        "up_to_id": newest,
        "up_to_checkpoint": 0,
    }


def test_an_export_never_contains_its_own_event(log):
    exported = events_of(jsonl_lines(export_file("jsonl")))
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == "exported"
    assert exported[-1]["id"] < event.id
    assert event.details["up_to_id"] == exported[-1]["id"]
    assert "exported" not in {e["action"] for e in exported}


def test_a_download_broken_off_half_way_is_recorded_with_the_rows_sent(
    monkeypatch, compliance, log
):
    monkeypatch.setattr("registrations.audit.export.BYTES_PER_CHUNK", 1)
    export = AuditExport(filters=AuditFilters(), fmt="jsonl")
    stream = audit_export_stream(export=export, actor=compliance, origin=BROWSER)
    [started] = exported_events()  # before anything was read
    next(stream)
    stream.close()  # what the server does when the client goes away
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == "exported"
    assert event.details["state"] == "interrupted"
    assert event.details["rows"] == 1
    assert event.details["complete"] is False
    assert event.details["started_id"] == started.id


def test_the_export_is_a_lazy_generator_that_reads_as_it_sends(monkeypatch, log):
    monkeypatch.setattr("registrations.audit.export.BYTES_PER_CHUNK", 1)
    export = AuditExport(filters=AuditFilters(), fmt="csv")
    chunks = export.chunks()
    assert inspect.isgenerator(chunks)
    assert export.rows == 0 and export.up_to_id is None  # nothing ran yet
    first = next(chunks)
    assert export.rows == 1  # the header and one row: the rest is not read yet
    assert first.decode("utf-8-sig").count("\r\n") == 2
    rest = list(chunks)
    assert export.rows == len(rest) + 1 >= 5


def test_an_unknown_export_format_is_refused_before_anything_is_recorded(log):
    before = AuditEvent.objects.count()
    with pytest.raises(ValueError, match="xlsx"):
        AuditExport(filters=AuditFilters(action="login"), fmt="xlsx")
    assert AuditEvent.objects.count() == before


def test_no_identity_value_leaves_in_an_export(log):
    for fmt in ("csv", "jsonl"):
        text = export_file(fmt).decode("utf-8-sig")
        for value in [*CUSTOMER.values(), "A123456", "陳大文"]:
            assert value not in text


def test_jsonl_lines_are_the_canonical_content_with_the_documented_hash(log):
    lines = jsonl_lines(export_file("jsonl"))
    assert lines
    for line in lines:
        obj = json.loads(line)
        assert set(obj) == set(COLUMNS)
        assert line == canonical(obj)
        event = AuditEvent.objects.get(id=obj["id"])
        assert (obj["chain"], obj["seq"], obj["prev_hash"]) == (
            event.chain,
            event.seq,
            event.prev_hash,
        )
        assert obj["at"] == event.at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        assert documented_hash(obj) == obj["hash"] == event.hash


@pytest.mark.parametrize("reason", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(staff, reason):
    audit_record(actor=staff, action="revealed", reason=reason)
    rows = csv_rows(export_file("csv", action="revealed"))
    cell = rows[1][COLUMNS.index("reason")]
    assert cell == "'" + reason
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


# Verifying an exported file on its own ---------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_full_export_verifies_from_the_file_alone(staff, log, fmt):
    for reason in FORMULAS:
        audit_record(actor=staff, action="revealed", reason=reason)
    data = export_file(fmt)
    report = verify_export(
        io.StringIO(data.decode("utf-8-sig"), newline=""), fmt, require_complete=True
    )
    assert report.ok, report.problem
    assert report.complete
    assert report.checked == len(log[1]) + len(FORMULAS)
    assert report.first_id == log[1][0].id
    assert report.links_checked == report.checked - report.chains


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_filtered_export_verifies_as_a_part_of_the_chain(log, fmt):
    data = export_file(fmt, actor="super")
    report = verify_export(io.StringIO(data.decode("utf-8-sig"), newline=""), fmt)
    assert report.ok, report.problem
    assert report.checked == 2
    assert report.links_checked == 1  # the reveal and the approval are consecutive
    assert not report.complete
    assert not verify_export(
        io.StringIO(data.decode("utf-8-sig"), newline=""), fmt, require_complete=True
    ).ok


def test_a_changed_value_in_an_exported_file_is_caught(log):
    lines = jsonl_lines(export_file("jsonl"))
    index = index_of(lines, log[1][2].id)
    obj = json.loads(lines[index])
    obj["reason"] = "nothing to see"
    lines[index] = json.dumps(obj, ensure_ascii=False)
    report = verify_export(lines, "jsonl")
    assert not report.ok
    assert report.broken_seq == obj["seq"]
    assert f"event #{obj['id']}" in report.problem and "changed" in report.problem


def test_a_changed_event_with_a_recomputed_hash_breaks_the_next_link(log):
    lines = jsonl_lines(export_file("jsonl"))
    index = index_of(lines, log[1][2].id)
    obj = json.loads(lines[index])
    obj["reason"] = "nothing to see"
    obj["hash"] = documented_hash(obj)
    lines[index] = json.dumps(obj, ensure_ascii=False)
    report = verify_export(lines, "jsonl")
    assert not report.ok
    assert report.broken_seq == obj["seq"] + 1
    assert "does not link" in report.problem


def test_reordered_lines_in_an_exported_file_are_caught(log):
    lines = jsonl_lines(export_file("jsonl"))
    lines[1], lines[2] = lines[2], lines[1]
    report = verify_export(lines, "jsonl")
    assert not report.ok
    assert "reorders" in report.problem


def test_a_deleted_line_is_caught_when_the_file_should_be_the_whole_chain(log):
    lines = jsonl_lines(export_file("jsonl"))
    index = index_of(lines, log[1][2].id)
    deleted = json.loads(lines.pop(index))
    chain, missing = deleted["chain"], deleted["seq"]
    assert verify_export(lines, "jsonl").gaps == [(chain, missing - 1, missing + 1)]
    report = verify_export(lines, "jsonl", require_complete=True)
    assert not report.ok
    assert report.broken_seq == missing
    assert f"chain {chain} position {missing} is missing" in report.problem


def test_a_csv_cell_edited_in_a_spreadsheet_is_caught(log):
    rows = csv_rows(export_file("csv"))
    [row] = [row for row in rows[1:] if row[COLUMNS.index("action")] == "revealed"]
    row[COLUMNS.index("store_code")] = "CWB1"
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    report = verify_export(io.StringIO(out.getvalue(), newline=""), "csv")
    assert not report.ok
    assert report.broken_seq == int(row[COLUMNS.index("seq")])
    assert f"event #{row[0]}" in report.problem


def test_a_file_that_is_not_an_export_is_reported_not_crashed_on():
    report = verify_export(["not json"], "jsonl")
    assert not report.ok and "not a simreg audit export" in report.problem
    report = verify_export(['{"id": 1}'], "jsonl")
    assert not report.ok and "not a simreg audit export" in report.problem
    report = verify_export(['{"checkpoint": {"number": 1}}'], "jsonl")
    assert not report.ok and "not a simreg audit export" in report.problem
    report = verify_export(io.StringIO("a,b\n1,2\n"), "csv")
    assert not report.ok and "header" in report.problem


# Signed checkpoints in an export ---------------------------------------------------------------


@pytest.fixture
def sealed(log, staff):
    """The log under two checkpoints, with one event sealed by neither."""
    first = checkpoint_seal()
    audit_record(actor=staff, action="viewed", registration=log[0])
    second = checkpoint_seal()
    audit_record(actor=staff, action="viewed", registration=log[0])
    return first, second


def test_a_jsonl_export_carries_the_checkpoints_sealed_before_it_began(compliance, sealed):
    export = AuditExport(filters=AuditFilters(), fmt="jsonl")
    stream = audit_export_stream(export=export, actor=compliance, origin=BROWSER)
    # Sealed after the export began: it names the export's own event, which the file leaves out.
    later = checkpoint_seal()
    assert later is not None
    lines = jsonl_lines(b"".join(stream))
    checkpoints = [json.loads(line) for line in lines[:2]]
    assert all(set(record) == {"checkpoint"} for record in checkpoints)
    assert checkpoints_of(lines) == [record["checkpoint"] for record in checkpoints]
    for record, sealed_checkpoint in zip(checkpoints, sealed, strict=True):
        checkpoint = record["checkpoint"]
        assert set(checkpoint) == CHECKPOINT_KEYS
        assert checkpoint["number"] == sealed_checkpoint.number
        assert checkpoint["heads"] == sealed_checkpoint.heads
        assert checkpoint["root"] == sealed_checkpoint.root
        assert checkpoint["signature"] == sealed_checkpoint.signature
        assert checkpoint["public_key"] == public_key_hex(signing_key())
    started = exported_events()[0]
    assert started.details["up_to_checkpoint"] == sealed[1].number
    report = verify_export(lines, "jsonl", require_complete=True, public_keys=audit_public_keys())
    assert report.ok, report.problem
    assert (report.checkpoints, report.signatures_checked, report.heads_checked) == (2, 2, 2)


def test_a_csv_export_holds_the_events_only(sealed):
    text = export_file("csv").decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS
    assert all(len(row) == len(COLUMNS) for row in rows[1:])
    report = verify_export(io.StringIO(text, newline=""), "csv", public_keys=audit_public_keys())
    assert report.ok and report.checkpoints == 0
    assert report.checked == len(rows) - 1


def test_checkpoints_verify_with_the_audit_public_key_and_fail_with_another(sealed):
    lines = jsonl_lines(export_file("jsonl"))
    assert verify_export(lines, "jsonl", public_keys=audit_public_keys()).ok
    another = public_key_hex(Ed25519PrivateKey.generate())
    report = verify_export(lines, "jsonl", public_keys={another})
    assert not report.ok
    assert report.problem == "checkpoint 1 is signed by a key that is not trusted"


def _forged_by_another_key(checkpoint: dict) -> None:
    """A forger signs the checkpoint with a key of their own and names that key."""
    forger = Ed25519PrivateKey.generate()
    message = (
        "simreg-audit-checkpoint:v1:{number}:{at}:{root}:{prev_digest}".format(**checkpoint)
    ).encode()
    checkpoint["public_key"] = public_key_hex(forger)
    checkpoint["signature"] = forger.sign(message).hex()


def _head_altered(checkpoint: dict) -> None:
    checkpoint["heads"][0][2] = "f" * 64


def _seq_of_a_head_altered(checkpoint: dict) -> None:
    checkpoint["heads"][0][1] -= 1


def _root_altered(checkpoint: dict) -> None:
    checkpoint["root"] = hashlib.sha256(b"another root").hexdigest()


def _signature_altered(checkpoint: dict) -> None:
    signature = bytearray.fromhex(checkpoint["signature"])
    signature[0] ^= 1
    checkpoint["signature"] = signature.hex()


def _time_altered(checkpoint: dict) -> None:
    checkpoint["at"] = "2001" + checkpoint["at"][4:]


@pytest.mark.parametrize(
    ("alter", "problem"),
    [
        (_head_altered, "its heads do not give its Merkle root"),
        (_seq_of_a_head_altered, "its heads do not give its Merkle root"),
        (_root_altered, "its heads do not give its Merkle root"),
        (_signature_altered, "its signature does not verify"),
        (_time_altered, "its signature does not verify"),
        (_forged_by_another_key, "is signed by a key that is not trusted"),
    ],
)
def test_an_altered_checkpoint_line_is_caught(sealed, alter, problem):
    lines = jsonl_lines(export_file("jsonl"))
    record = json.loads(lines[1])
    assert record["checkpoint"]["number"] == 2
    alter(record["checkpoint"])
    lines[1] = canonical(record)
    report = verify_export(lines, "jsonl", public_keys=audit_public_keys())
    assert not report.ok
    assert report.problem == f"checkpoint 2 {problem}"


def test_a_checkpoint_line_removed_from_the_top_of_an_export_is_caught(sealed):
    lines = jsonl_lines(export_file("jsonl"))
    assert json.loads(lines[0])["checkpoint"]["number"] == 1
    report = verify_export(lines[1:], "jsonl", public_keys=audit_public_keys())
    assert not report.ok
    assert report.problem == (
        "checkpoint 2 is the first in the file: a checkpoint before it is missing"
    )


def test_a_checkpoint_that_no_longer_follows_the_one_before_it_is_caught(sealed):
    """Checkpoint 1 replaced by another validly signed one (the key was stolen): checkpoint 2
    still names the digest of the original."""
    lines = jsonl_lines(export_file("jsonl"))
    record = json.loads(lines[0])
    checkpoint = record["checkpoint"]
    checkpoint["at"] = "2001-01-01T00:00:00.000000Z"
    message = "simreg-audit-checkpoint:v1:{number}:{at}:{root}:{prev_digest}".format(**checkpoint)
    checkpoint["signature"] = signing_key().sign(message.encode()).hex()
    lines[0] = canonical(record)
    report = verify_export(lines, "jsonl", public_keys=audit_public_keys())
    assert not report.ok
    assert report.problem == "checkpoint 2 does not follow the checkpoint before it"


def test_a_complete_export_cut_at_the_end_fails_where_a_checkpoint_names_a_removed_head(sealed):
    lines = jsonl_lines(export_file("jsonl"))
    head_chain, head_seq, _ = sealed[1].heads[0]
    # Cut the unsealed event and the sealed head before it: the chain that remains is intact.
    cut = lines[:-2]
    assert json.loads(lines[-2])["seq"] == head_seq
    report = verify_export(cut, "jsonl", public_keys=audit_public_keys())
    assert report.ok, "a part of the log is intact on its own"
    report = verify_export(cut, "jsonl", require_complete=True, public_keys=audit_public_keys())
    assert not report.ok
    assert report.problem == (
        f"checkpoint 2 names chain {head_chain} position {head_seq}, which is not in the file "
        "(the log was cut)"
    )
    # The newest event is sealed by no checkpoint: cutting it alone goes unseen in the file.
    assert verify_export(lines[:-1], "jsonl", require_complete=True).ok


def test_an_edited_event_with_its_chain_re_hashed_is_caught_by_the_checkpoint(sealed, log):
    lines = jsonl_lines(export_file("jsonl"))
    index = index_of(lines, log[1][2].id)
    prev_hash = None
    for i in range(index, len(lines)):
        event = json.loads(lines[i])
        if i == index:
            event["reason"] = "nothing to see"
        else:
            event["prev_hash"] = prev_hash
        event["hash"] = prev_hash = documented_hash(event)
        lines[i] = canonical(event)
    events_only = [line for line in lines if "checkpoint" not in json.loads(line)]
    assert verify_export(events_only, "jsonl", require_complete=True).ok, "intact on their own"
    report = verify_export(lines, "jsonl", public_keys=audit_public_keys())
    assert not report.ok
    assert "is not the one checkpoint 1 signed (the chain was re-hashed)" in report.problem


@pytest.mark.django_db(transaction=True)
def test_events_of_several_stores_land_in_several_chains_linked_per_chain(
    store, other_store, staff, supervisor
):
    for target in (store, other_store, store, other_store, store, other_store):
        audit_record(actor=supervisor, action="viewed", store=target)
    checkpoint_seal()
    lines = jsonl_lines(export_file("jsonl"))
    events = events_of(lines)
    chains = {e["store_code"]: e["chain"] for e in events}
    assert chains[store.code] != chains[other_store.code]
    # Interleaved in the file, each chain links only to its own events.
    assert [e["chain"] for e in events] == [chains[store.code], chains[other_store.code]] * 3
    assert [e["seq"] for e in events if e["chain"] == chains[store.code]] == [1, 2, 3]
    report = verify_export(lines, "jsonl", require_complete=True, public_keys=audit_public_keys())
    assert report.ok, report.problem
    assert report.chains == 2
    assert report.links_checked == 4
    assert report.heads_checked == 2

    # An event of one chain linked to the line above it, which belongs to the other chain.
    relinked = list(lines)
    index = index_of(relinked, events[3]["id"])
    event = json.loads(relinked[index])
    event["prev_hash"] = events[2]["hash"]
    event["hash"] = documented_hash(event)
    relinked[index] = canonical(event)
    report = verify_export(relinked, "jsonl")
    assert not report.ok
    assert report.problem == (
        f"event #{event['id']} (chain {event['chain']} position 2) does not link to the event "
        "before it in its chain (an event was inserted, deleted or reordered)"
    )

    # The newest event of one chain removed, in the middle of the file.
    cut = [line for line in lines if json.loads(line).get("id") != events[4]["id"]]
    assert verify_export(cut, "jsonl", public_keys=audit_public_keys()).ok
    report = verify_export(cut, "jsonl", require_complete=True, public_keys=audit_public_keys())
    assert not report.ok
    assert report.problem == (
        f"checkpoint 1 names chain {chains[store.code]} position 3, which is not in the file "
        "(the log was cut)"
    )


# The command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_audit_records_the_start_writes_the_file_then_records_the_end(tmp_path, log, fmt):
    checkpoint_seal()
    output = tmp_path / f"audit.{fmt}"
    out = io.StringIO()
    call_command("export_audit", "--format", fmt, "--output", str(output), stdout=out)
    report = verify_export(output, fmt, require_complete=True, public_keys=audit_public_keys())
    assert report.ok and report.complete, report.problem
    assert report.checked == len(log[1])
    assert report.checkpoints == (1 if fmt == "jsonl" else 0)
    started, finished = exported_events()
    assert finished.id == newest_id()
    for event in (started, finished):
        assert event.actor is None and event.user_agent == "manage.py"
        assert event.details["format"] == fmt
        assert event.details["up_to_id"] == report.last_id
        assert event.details["up_to_checkpoint"] == 1
    assert started.details["state"] == "started"
    assert finished.details["state"] == "finished"
    assert finished.details["rows"] == report.checked
    assert finished.details["started_id"] == started.id
    assert f"{report.checked} events exported to {output}" in out.getvalue()


def test_export_audit_records_the_start_before_the_first_byte(tmp_path, monkeypatch, log):
    newest_when_written = []
    chunks = AuditExport.chunks

    def watched(self):
        for chunk in chunks(self):
            newest_when_written.append(AuditEvent.objects.order_by("-id").first())
            yield chunk

    monkeypatch.setattr(AuditExport, "chunks", watched)
    call_command("export_audit", "--output", str(tmp_path / "audit.jsonl"), stdout=io.StringIO())
    first = newest_when_written[0]
    assert first.action == "exported" and first.details["state"] == "started"


def test_export_audit_broken_off_half_way_records_the_rows_written(tmp_path, monkeypatch, log):
    monkeypatch.setattr("registrations.audit.export.BYTES_PER_CHUNK", 1)
    chunks = AuditExport.chunks

    def failing(self):
        rows = chunks(self)
        yield next(rows)
        raise OSError("No space left on device")

    monkeypatch.setattr(AuditExport, "chunks", failing)
    output = tmp_path / "audit.jsonl"
    with pytest.raises(OSError, match="No space left"):
        call_command("export_audit", "--output", str(output), stdout=io.StringIO())
    started, ended = exported_events()
    assert started.details["state"] == "started"
    assert ended.details["state"] == "interrupted" and ended.details["complete"] is False
    assert ended.details["rows"] == len(output.read_text().splitlines()) == 1


def test_export_audit_takes_the_same_filters_as_the_audit_page(tmp_path, log):
    registration, events = log
    output = tmp_path / "audit.jsonl"
    call_command(
        "export_audit",
        "--since",
        "2000-01-01",
        "--until",
        "2999-01-01T00:00",
        "--actor",
        "super",
        "--action",
        "revealed",
        "--store",
        "MK01",
        "--reference",
        registration.reference,
        "--output",
        str(output),
    )
    objects = [json.loads(line) for line in output.read_text().splitlines()]
    assert [o["id"] for o in objects] == [events[2].id]
    started, event = exported_events()
    assert started.details["filters"] == event.details["filters"]
    assert event.details["filters"] == {
        "since": "1999-12-31T16:00:00.000000Z",  # midnight in Hong Kong
        "until": "2998-12-31T16:00:00.000000Z",
        "actor": "super",
        "action": "revealed",
        "store": "MK01",
        "reference": registration.reference,
    }
    assert event.details["rows"] == 1


def test_export_audit_writes_to_standard_output_by_default(log):
    out = io.StringIO()
    call_command("export_audit", "--action", "login_failed", stdout=out)
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["actor_username"] == "ghost"


@pytest.mark.parametrize(
    "args",
    [
        ["--action", "shredded"],
        ["--since", "last tuesday"],
        ["--since", "2025-02-01", "--until", "2025-01-01"],
        ["--format", "xlsx"],
        ["--output", "/nonexistent-folder/audit.csv"],
        # Times that would overflow when converted to UTC.
        ["--since", "0001-01-01"],
        ["--until", "0001-01-01T00:00"],
        ["--since", "1999-12-31T23:59"],
        ["--until", "3000-01-01"],
    ],
)
def test_export_audit_refuses_bad_options_with_a_message(args):
    with pytest.raises(CommandError):
        call_command("export_audit", *args)
    assert not AuditEvent.objects.filter(action="exported").exists()


def test_export_audit_names_the_years_a_time_must_fall_in():
    with pytest.raises(CommandError, match="--since must fall in the years 2000 to 2999"):
        call_command("export_audit", "--since", "0001-01-01")


def test_filters_refuse_a_time_that_would_overflow_in_utc():
    ancient = datetime.datetime(1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=8)))
    with pytest.raises(ValueError, match="2000 to 2999"):
        AuditFilters(since=ancient)
    assert AuditFilters().as_details() == {}
