"""Exports of the audit log: streamed, filtered, safe in a spreadsheet, verifiable on their own."""

import csv
import datetime
import hashlib
import inspect
import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.http import StreamingHttpResponse
from django.urls import reverse

from registrations import audit_export
from registrations.audit import Origin, audit_record, canonical_form
from registrations.audit_export import (
    COLUMNS,
    AuditExport,
    AuditFilters,
    audit_export_stream,
    verify_export,
)
from registrations.models import AuditEvent
from tests.factories import CUSTOMER, make_registration

pytestmark = pytest.mark.django_db

EXPORT = reverse("audit-export")
FORMULAS = ['=HYPERLINK("http://x")', "+1", "-2", "@SUM(A1)", "\tTab", "\rCR", "'quoted"]


@pytest.fixture
def compliance_client(client, compliance):
    client.force_login(compliance)
    return client


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


def body(response) -> bytes:
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content)


def csv_rows(data: bytes) -> list[list[str]]:
    text = data.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline="")))


def jsonl_objects(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines(keepends=False) if line]


def test_the_browser_export_streams_csv_with_a_header_and_every_event(compliance_client, log):
    response = compliance_client.get(EXPORT, {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="simreg-audit-')
    rows = csv_rows(body(response))
    assert tuple(rows[0]) == COLUMNS
    seqs = [int(row[0]) for row in rows[1:]]
    assert seqs == sorted(seqs)
    assert set(seqs) >= {event.seq for event in log[1]}


def test_the_export_follows_the_filters_of_the_list(compliance_client, log, supervisor):
    registration, _ = log
    response = compliance_client.get(
        EXPORT, {"format": "jsonl", "actor": "super", "reference": registration.reference}
    )
    assert response["Content-Type"].startswith("application/jsonl")
    objects = jsonl_objects(body(response))
    assert [o["action"] for o in objects] == ["revealed", "approved"]
    assert {o["actor_id"] for o in objects} == {supervisor.pk}


def exported_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.EXPORTED).order_by("seq"))


def test_each_export_is_recorded_when_it_starts_and_when_it_ends(
    compliance_client, compliance, log
):
    newest = AuditEvent.objects.order_by("-seq").first().seq
    data = body(compliance_client.get(EXPORT, {"format": "csv", "action": "approved"}))
    started, finished = exported_events()
    assert started.actor == finished.actor == compliance
    assert started.details == {
        "state": "started",
        "format": "csv",
        "filters": {"action": "approved"},
        "up_to_seq": newest,
    }
    assert finished.details == {
        "state": "finished",
        "format": "csv",
        "filters": {"action": "approved"},
        "up_to_seq": newest,
        "rows": 1,
        "complete": True,
        "started_seq": started.seq,
    }
    assert finished.details["rows"] == len(csv_rows(data)) - 1
    assert finished.seq == AuditEvent.objects.order_by("-seq").first().seq


def test_the_start_is_recorded_before_the_first_byte_leaves(compliance_client, compliance, log):
    response = compliance_client.get(EXPORT, {"format": "jsonl"})
    # The response is built, nothing of it is sent yet: the start is already in the log.
    [started] = exported_events()
    assert started.details["state"] == "started"
    assert started.details["format"] == "jsonl"
    assert started.details["up_to_seq"] == started.seq - 1
    objects = jsonl_objects(body(response))
    assert [o["seq"] for o in objects] == list(range(1, started.seq))  # not its own events
    started, finished = exported_events()
    assert finished.details["state"] == "finished"
    assert finished.details["rows"] == len(objects)


def test_an_export_killed_before_it_ends_leaves_its_start_in_the_log(compliance_client, log):
    response = compliance_client.get(EXPORT, {"format": "csv", "actor": "super"})
    # A worker killed outright runs no clean-up code: a stream that is never read is the
    # nearest a test comes to it.
    assert isinstance(response, StreamingHttpResponse)
    del response
    [started] = exported_events()
    assert started.details == {
        "state": "started",
        "format": "csv",
        "filters": {"actor": "super"},
        "up_to_seq": started.seq - 1,
    }


def test_an_export_never_contains_its_own_event(compliance_client, log):
    data = body(compliance_client.get(EXPORT, {"format": "jsonl"}))
    exported = jsonl_objects(data)
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "exported"
    assert exported[-1]["seq"] < event.seq
    assert event.details["up_to_seq"] == exported[-1]["seq"]
    assert "exported" not in {o["action"] for o in exported}


def test_a_download_broken_off_half_way_is_recorded_with_the_rows_sent(
    monkeypatch, compliance, log
):
    monkeypatch.setattr(audit_export, "BYTES_PER_CHUNK", 1)
    export = AuditExport(filters=AuditFilters(), fmt="jsonl")
    stream = audit_export_stream(export=export, actor=compliance, origin=Origin())
    [started] = exported_events()  # before anything was read
    next(stream)
    stream.close()  # what the server does when the client goes away
    event = AuditEvent.objects.order_by("-seq").first()
    assert event.action == "exported"
    assert event.details["state"] == "interrupted"
    assert event.details["rows"] == 1
    assert event.details["complete"] is False
    assert event.details["started_seq"] == started.seq


def test_the_export_is_a_lazy_generator_that_reads_as_it_sends(monkeypatch, log):
    monkeypatch.setattr(audit_export, "BYTES_PER_CHUNK", 1)
    export = AuditExport(filters=AuditFilters(), fmt="csv")
    chunks = export.chunks()
    assert inspect.isgenerator(chunks)
    assert export.rows == 0 and export.up_to_seq is None  # nothing ran yet
    first = next(chunks)
    assert export.rows == 1  # the header and one row: the rest is not read yet
    assert first.decode("utf-8-sig").count("\r\n") == 2
    rest = list(chunks)
    assert export.rows == len(rest) + 1 >= 5


def test_the_browser_refuses_an_unknown_format_without_an_error_page(compliance_client, log):
    before = AuditEvent.objects.count()
    response = compliance_client.get(EXPORT, {"format": "xlsx", "action": "login"})
    assert response.status_code == 302
    assert "action=login" in response["Location"]
    assert AuditEvent.objects.count() == before


def test_no_identity_value_leaves_in_an_export(compliance_client, log):
    for fmt in ("csv", "jsonl"):
        text = body(compliance_client.get(EXPORT, {"format": fmt})).decode("utf-8-sig")
        for value in [*CUSTOMER.values(), "A123456", "陳大文"]:
            assert value not in text


def test_jsonl_lines_are_the_hashed_canonical_form_plus_the_hash(compliance_client, log):
    lines = body(compliance_client.get(EXPORT, {"format": "jsonl"})).decode().split("\n")
    for line in filter(None, lines):
        obj = json.loads(line)
        event = AuditEvent.objects.get(seq=obj["seq"])
        assert set(obj) == set(COLUMNS)
        payload = {k: v for k, v in obj.items() if k != "hash"}
        as_hashed = canonical_form(**{**payload, "at": event.at})
        assert json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False) == (
            as_hashed.decode()
        )
        assert hashlib.sha256(as_hashed).hexdigest() == obj["hash"] == event.hash


@pytest.mark.parametrize("reason", FORMULAS)
def test_csv_cells_a_spreadsheet_would_run_are_neutralised(compliance_client, staff, reason):
    audit_record(actor=staff, action="revealed", reason=reason)
    rows = csv_rows(body(compliance_client.get(EXPORT, {"format": "csv", "action": "revealed"})))
    cell = rows[1][COLUMNS.index("reason")]
    assert cell == "'" + reason
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_full_export_verifies_from_the_file_alone(compliance_client, staff, log, fmt):
    for reason in FORMULAS:
        audit_record(actor=staff, action="revealed", reason=reason)
    data = body(compliance_client.get(EXPORT, {"format": fmt}))
    report = verify_export(io.StringIO(data.decode("utf-8-sig"), newline=""), fmt)
    assert report.ok, report.problem
    assert report.complete
    assert report.first_seq == 1
    assert report.links_checked == report.checked - 1


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_a_filtered_export_verifies_as_a_part_of_the_chain(compliance_client, log, fmt):
    data = body(compliance_client.get(EXPORT, {"format": fmt, "actor": "super"}))
    report = verify_export(io.StringIO(data.decode("utf-8-sig"), newline=""), fmt)
    assert report.ok, report.problem
    assert report.checked == 2
    assert report.links_checked == 1  # the reveal and the approval are consecutive
    assert not report.complete
    assert not verify_export(
        io.StringIO(data.decode("utf-8-sig"), newline=""), fmt, require_complete=True
    ).ok


def _jsonl(compliance_client) -> list[str]:
    return body(compliance_client.get(EXPORT, {"format": "jsonl"})).decode().splitlines()


def test_a_changed_value_in_an_exported_file_is_caught(compliance_client, log):
    lines = _jsonl(compliance_client)
    obj = json.loads(lines[2])
    obj["reason"] = "nothing to see"
    lines[2] = json.dumps(obj, ensure_ascii=False)
    report = verify_export(lines, "jsonl")
    assert not report.ok
    assert report.broken_seq == obj["seq"]
    assert "changed" in report.problem


def test_a_changed_event_with_a_recomputed_hash_breaks_the_next_link(compliance_client, log):
    lines = _jsonl(compliance_client)
    obj = json.loads(lines[2])
    obj["reason"] = "nothing to see"
    payload = {k: v for k, v in obj.items() if k != "hash"}
    obj["hash"] = hashlib.sha256(
        json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()
    lines[2] = json.dumps(obj, ensure_ascii=False)
    report = verify_export(lines, "jsonl")
    assert not report.ok
    assert report.broken_seq == obj["seq"] + 1
    assert "does not link" in report.problem


def test_reordered_lines_in_an_exported_file_are_caught(compliance_client, log):
    lines = _jsonl(compliance_client)
    lines[1], lines[2] = lines[2], lines[1]
    report = verify_export(lines, "jsonl")
    assert not report.ok
    assert "reorders" in report.problem


def test_a_deleted_line_is_caught_when_the_file_should_be_the_whole_chain(compliance_client, log):
    lines = _jsonl(compliance_client)
    missing = json.loads(lines[2])["seq"]
    del lines[2]
    assert verify_export(lines, "jsonl").gaps == [(missing - 1, missing + 1)]
    report = verify_export(lines, "jsonl", require_complete=True)
    assert not report.ok
    assert report.broken_seq == missing


def test_a_csv_cell_edited_in_a_spreadsheet_is_caught(compliance_client, log):
    text = body(compliance_client.get(EXPORT, {"format": "csv"})).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    rows[3][COLUMNS.index("store_code")] = "CWB1"
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    report = verify_export(io.StringIO(out.getvalue(), newline=""), "csv")
    assert not report.ok
    assert report.broken_seq == int(rows[3][0])


def test_a_file_that_is_not_an_export_is_reported_not_crashed_on():
    report = verify_export(["not json"], "jsonl")
    assert not report.ok and "not a simreg audit export" in report.problem
    report = verify_export(io.StringIO("a,b\n1,2\n"), "csv")
    assert not report.ok and "header" in report.problem


# The command ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_audit_records_the_start_writes_the_file_then_records_the_end(tmp_path, log, fmt):
    output = tmp_path / f"audit.{fmt}"
    out = io.StringIO()
    call_command("export_audit", "--format", fmt, "--output", str(output), stdout=out)
    report = verify_export(output, fmt)
    assert report.ok and report.complete, report.problem
    assert report.checked == len(log[1])
    started, finished = exported_events()
    assert finished.seq == AuditEvent.objects.order_by("-seq").first().seq
    for event in (started, finished):
        assert event.actor is None and event.user_agent == "manage.py"
        assert event.details["format"] == fmt
        assert event.details["up_to_seq"] == report.last_seq
    assert started.details["state"] == "started"
    assert finished.details["state"] == "finished"
    assert finished.details["rows"] == report.checked
    assert finished.details["started_seq"] == started.seq
    assert f"{report.checked} events exported to {output}" in out.getvalue()


def test_export_audit_records_the_start_before_the_first_byte(tmp_path, monkeypatch, log):
    newest_when_written = []
    chunks = AuditExport.chunks

    def watched(self):
        for chunk in chunks(self):
            newest_when_written.append(AuditEvent.objects.order_by("-seq").first())
            yield chunk

    monkeypatch.setattr(AuditExport, "chunks", watched)
    call_command("export_audit", "--output", str(tmp_path / "audit.jsonl"), stdout=io.StringIO())
    first = newest_when_written[0]
    assert first.action == "exported" and first.details["state"] == "started"


def test_export_audit_broken_off_half_way_records_the_rows_written(tmp_path, monkeypatch, log):
    monkeypatch.setattr(audit_export, "BYTES_PER_CHUNK", 1)
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


def test_export_audit_takes_the_same_filters_as_the_browser(tmp_path, log):
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
    assert [o["seq"] for o in objects] == [events[2].seq]
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
