"""Verifications and exports from the audit page run as jobs of the worker, not in the request."""

import datetime
import io
import re
from unittest import mock

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from registrations import roles
from registrations.audit import Origin, audit_record, verify_export
from registrations.crypto import FRAMES_MAGIC, DecryptionError, decrypt_frames, encrypt_frames
from registrations.models import AuditCheckpoint, AuditEvent, AuditJob
from registrations.services import compliance
from registrations.services.jobs import scheduled_run_claim
from tests.factories import make_registration, make_user
from tests.jobs import export_from_page, job_from, run_jobs, run_worker_loop, verify_from_page

pytestmark = pytest.mark.django_db

VERIFY = reverse("audit-verify")
EXPORT = reverse("audit-export")


def job_url(job: AuditJob, name: str = "audit-job") -> str:
    return reverse(name, args=[job.pk])


@pytest.fixture
def compliance_client(client, compliance, exports_folder):
    client.force_login(compliance)
    return client


@pytest.fixture
def log(store, staff, supervisor):
    """A few events by a user whose name must never be found in plaintext on disk."""
    registration = make_registration(store=store, created_by=staff)
    clerk = make_user(roles.COUNTER_STAFF, stores=[store], username="zebra.wong")
    return [
        audit_record(actor=clerk, action="login", origin=Origin(ip="10.0.0.7", user_agent="UA")),
        audit_record(actor=clerk, action="viewed", registration=registration),
        audit_record(actor=supervisor, action="approved", registration=registration),
    ]


# Verification -----------------------------------------------------------------------------------


def test_starting_a_verification_enqueues_a_job_and_returns_at_once(compliance_client, log):
    response = compliance_client.post(VERIFY)
    job = job_from(response)
    assert job.kind == AuditJob.Kind.VERIFY and job.state == AuditJob.State.QUEUED
    # Nothing was verified inside the request: the worker has not run yet.
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.VERIFIED).exists()
    task = DBTaskResult.objects.get()
    assert task.task_path == "registrations.tasks.audit_job_run"
    assert task.status == "READY"
    page = compliance_client.get(response["Location"]).content.decode()
    assert "Waiting for the worker" in page
    assert f'data-status-url="{job_url(job, "audit-job-status")}"' in page
    assert "registrations/audit_job.js" in page
    assert '<meta http-equiv="refresh"' in page  # inside <noscript>: without the script


def test_the_worker_runs_the_verification_and_the_page_shows_the_outcome(
    compliance_client, compliance, log
):
    job = job_from(compliance_client.post(VERIFY))
    run_jobs()
    job.refresh_from_db()
    assert job.state == AuditJob.State.FINISHED and job.finished_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.VERIFIED)
    assert event.actor == compliance
    assert event.ip == "127.0.0.1"  # where the request came from, not the worker
    assert job.result["ok"] is True
    checked = job.result["checked"]
    assert checked == AuditEvent.objects.filter(id__lt=event.id).count()  # all before it
    page = compliance_client.get(job_url(job)).content.decode()
    assert f"The audit chain is intact: {checked} events checked." in page
    assert "alert-success" in page and "alert-danger" not in page
    assert 'id="audit-head"' in page
    # No checkpoint was sealed yet: every event rests on the chains alone.
    assert (
        f"0 signed checkpoints checked. {checked} events are newer than the latest checkpoint"
        in page
    )
    # The job has ended: the page no longer follows it.
    assert "data-status-url" not in page and "audit_job.js" not in page
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


def test_a_recorded_anchor_is_checked_by_the_job(compliance_client, log):
    first = log[0]
    anchor = f"{first.chain}:{first.seq}:{first.hash}"
    page = verify_from_page(compliance_client, {"anchor": anchor}).content.decode()
    assert f"Anchor {first.chain}:{first.seq} matches" in page
    job = AuditJob.objects.get()
    assert job.anchors == [{"chain": first.chain, "seq": first.seq, "hash": first.hash}]


def test_progress_is_recorded_while_the_verification_runs(compliance_client, log):
    job = job_from(compliance_client.post(VERIFY))
    seen = {}
    real_check = compliance.audit_chain_check

    def check_reporting_progress(**kwargs):
        kwargs["progress"](2, 5)
        # What the job page's script reads while the worker is busy.
        seen.update(compliance_client.get(job_url(job, "audit-job-status")).json())
        return real_check(**kwargs)

    with mock.patch.object(compliance, "audit_chain_check", check_reporting_progress):
        run_jobs()
    assert seen["state"] == "running" and seen["finished"] is False
    assert (seen["done"], seen["total"]) == (2, 5)
    assert seen["progress_label"] == "2 of 5 events checked"
    job.refresh_from_db()
    assert job.progress_done == job.progress_total == job.result["checked"]
    status = compliance_client.get(job_url(job, "audit-job-status")).json()
    assert status["finished"] is True and status["state"] == "finished"


def test_a_broken_log_is_one_failure_per_problem_and_never_a_success(compliance_client, compliance):
    problem = "chain 3 position 2: was edited after it was written"
    job = AuditJob.objects.create(
        kind=AuditJob.Kind.VERIFY,
        requested_by=compliance,
        state=AuditJob.State.FINISHED,
        finished_at=timezone.now(),
        result={
            "ok": False,
            "checked": 9,
            "problems": [problem],
            "anchors": [{"chain": 0, "seq": 1, "hash": "a" * 64, "matches": True}],
        },
    )
    page = compliance_client.get(job_url(job)).content.decode()
    assert page.count("alert-danger") == 1
    assert f"The audit log is broken: {problem}." in page
    assert "Anchor 0:1 matches" in page and "alert-info" in page  # information, beside a failure
    assert "alert-success" not in page and "The audit chain is intact" not in page
    assert 'id="audit-head"' not in page  # nothing to record from a log that fails


def test_a_job_that_fails_says_so(compliance_client, log):
    job = job_from(compliance_client.post(VERIFY))
    with mock.patch.object(compliance, "audit_chain_check", side_effect=RuntimeError("disk")):
        run_jobs()
    job.refresh_from_db()
    assert job.state == AuditJob.State.FAILED
    assert DBTaskResult.objects.get().status == "FAILED"
    page = compliance_client.get(job_url(job)).content.decode()
    assert "The job did not finish. Start it again from the audit log" in page


def test_the_task_is_given_the_job_id_only(compliance_client, log):
    job = job_from(
        compliance_client.post(EXPORT, {"format": "csv", "actor": "zebra.wong", "store": "MK01"})
    )
    task = DBTaskResult.objects.get()
    assert task.args_kwargs == {"args": [job.pk], "kwargs": {}}
    assert job.filters == {"actor": "zebra.wong", "store": "MK01"}


# Export ------------------------------------------------------------------------------------------


def test_an_export_job_writes_an_encrypted_file(compliance_client, log, exports_folder):
    job = job_from(compliance_client.post(EXPORT, {"format": "jsonl"}))
    assert not exports_folder.exists()  # nothing written inside the request
    run_jobs()
    job.refresh_from_db()
    assert job.state == AuditJob.State.FINISHED
    [stored] = list(exports_folder.iterdir())
    assert job.stored_name == f"audit-exports/{stored.name}"
    raw = stored.read_bytes()
    assert raw.startswith(FRAMES_MAGIC)
    for plaintext in (b"zebra.wong", b"MK01", b"10.0.0.7", b'"approved"', b"prev_hash"):
        assert plaintext not in raw
    assert job.expires_at == job.finished_at + datetime.timedelta(hours=24)
    started, finished = AuditEvent.objects.filter(action="exported").order_by("id")
    assert started.details["state"] == "started" and finished.details["state"] == "finished"
    # Every event before the export began: the log as it stood then.
    assert job.result["rows"] == AuditEvent.objects.filter(id__lt=started.id).count()
    assert finished.details["rows"] == job.result["rows"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_download_decrypts_the_export_and_it_verifies(compliance_client, log, fmt):
    response = export_from_page(compliance_client, {"format": fmt})
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="simreg-audit-')
    assert response["Content-Disposition"].endswith(f'.{fmt}"')
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "zebra.wong" in text
    report = verify_export(io.StringIO(text, newline=""), fmt)
    assert report.ok, report.problem
    assert report.checked == AuditJob.objects.get().result["rows"]


def test_an_export_follows_the_filters_it_was_asked_with(compliance_client, log):
    response = export_from_page(compliance_client, {"format": "csv", "actor": "zebra.wong"})
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + 2  # the header, the sign-in and the view
    assert all("zebra.wong" in line for line in lines[1:])
    page = compliance_client.get(job_url(AuditJob.objects.get())).content.decode()
    assert "User: <code>zebra.wong</code>" in page


def test_each_download_is_an_audit_event(compliance_client, compliance, log):
    export_from_page(compliance_client, {"format": "csv"})
    job = AuditJob.objects.get()
    event = AuditEvent.objects.get(action=AuditEvent.Action.EXPORT_DOWNLOADED)
    assert event.actor == compliance
    assert event.details["job"] == job.pk and event.details["rows"] == job.result["rows"]
    assert event.get_action_display() == "Audit export downloaded"
    compliance_client.get(job_url(job, "audit-job-download"))
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_DOWNLOADED).count() == 2


def test_another_compliance_admin_cannot_see_or_download_an_export(compliance_client, client, log):
    job = job_from(compliance_client.post(EXPORT, {"format": "csv"}))
    run_jobs()
    other = make_user(roles.COMPLIANCE_ADMIN, username="compliance.two")
    client.force_login(other)
    for name in ("audit-job", "audit-job-status", "audit-job-download"):
        assert client.get(job_url(job, name)).status_code == 404, name
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_DOWNLOADED).exists()
    assert "audit-jobs" not in client.get(reverse("audit-list")).content.decode()


def test_after_its_time_an_export_is_gone_with_a_message(compliance_client, log, exports_folder):
    job = job_from(compliance_client.post(EXPORT, {"format": "csv"}))
    run_jobs()
    AuditJob.objects.filter(pk=job.pk).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    response = compliance_client.get(job_url(job, "audit-job-download"))
    assert response.status_code == 410
    page = response.content.decode()
    assert "This export has expired and its file was deleted" in page
    assert "Download the export" not in page
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT_DOWNLOADED).exists()
    # The purge deletes the file; the job stays, as a record of what was exported.
    assert compliance.audit_exports_purge(now=timezone.now()) == 1
    assert not list(exports_folder.iterdir())
    job.refresh_from_db()
    assert job.stored_name == ""
    assert compliance_client.get(job_url(job, "audit-job-download")).status_code == 410
    page = compliance_client.get(job_url(job)).content.decode()
    assert "This export has expired" in page and "Download the export" not in page


def test_the_time_to_live_is_a_setting(compliance_client, settings, log):
    settings.AUDIT_EXPORT_TTL_HOURS = 2
    job = job_from(compliance_client.post(EXPORT, {"format": "csv"}))
    run_jobs()
    job.refresh_from_db()
    assert job.expires_at - job.finished_at == datetime.timedelta(hours=2)


def test_an_export_under_a_key_no_longer_configured_is_gone_not_an_error(
    compliance_client, settings, log
):
    job = job_from(compliance_client.post(EXPORT, {"format": "csv"}))
    run_jobs()
    settings.FIELD_ENCRYPTION_KEY = [Fernet.generate_key().decode()]
    response = compliance_client.get(job_url(job, "audit-job-download"))
    assert response.status_code == 410
    assert "can no longer be read" in response.content.decode()


def test_a_file_no_job_names_is_purged_once_old(exports_folder, db):
    exports_folder.mkdir(parents=True)
    left = exports_folder / "0123456789abcdef0123456789abcdef.csv.enc"
    left.write_bytes(FRAMES_MAGIC)
    assert compliance.audit_exports_purge(now=timezone.now()) == 0  # may still be written
    later = timezone.now() + datetime.timedelta(hours=25)
    assert compliance.audit_exports_purge(now=later) == 1
    assert not left.exists()


# Who may use the job pages ----------------------------------------------------------------------


@pytest.mark.parametrize("role", [roles.COUNTER_STAFF, roles.SUPERVISOR, None])
def test_other_roles_cannot_reach_the_job_pages(compliance_client, client, log, role):
    job = job_from(compliance_client.post(EXPORT, {"format": "csv"}))
    run_jobs()
    user = make_user(role, is_superuser=role is None, is_staff=role is None, username="someone")
    client.force_login(user)
    for name in ("audit-job", "audit-job-status", "audit-job-download"):
        assert client.get(job_url(job, name)).status_code == 403, name
    assert client.post(EXPORT, {"format": "csv"}).status_code == 403
    assert client.post(VERIFY).status_code == 403
    assert AuditJob.objects.count() == 1


def test_the_audit_page_lists_the_users_recent_jobs(compliance_client, log):
    verify = job_from(compliance_client.post(VERIFY))
    export = job_from(compliance_client.post(EXPORT, {"format": "jsonl"}))
    run_jobs()
    page = compliance_client.get(reverse("audit-list")).content.decode()
    jobs = page.split('id="audit-jobs"', 1)[1].split("</table>", 1)[0]
    assert jobs.index(job_url(export)) < jobs.index(job_url(verify))  # newest first
    assert "Export of the audit log (JSON Lines)" in jobs
    assert "Verification of the audit log" in jobs
    assert jobs.count("Finished") == 2


# The worker's periodic tasks ---------------------------------------------------------------------


def periodic_runs(name: str) -> int:
    return DBTaskResult.objects.filter(task_path=f"registrations.tasks.{name}").count()


def test_the_worker_loop_seals_the_log_periodically(log, settings):
    settings.AUDIT_SEAL_SECONDS = 60
    run_worker_loop()
    assert periodic_runs("audit_log_seal") == 1
    # The seal, the purge and the sweep of the customer notifications.
    assert DBTaskResult.objects.filter(status="SUCCESSFUL").count() == 3
    checkpoint = AuditCheckpoint.objects.get()
    assert checkpoint.heads  # every chain's head, signed
    # Within the period, no worker enqueues another seal.
    run_worker_loop()
    assert periodic_runs("audit_log_seal") == 1
    audit_record(actor=None, action="login_failed", actor_username="x")
    later = timezone.now() + datetime.timedelta(seconds=61)
    with mock.patch("django.utils.timezone.now", return_value=later):
        run_worker_loop()
    assert periodic_runs("audit_log_seal") == 2
    assert AuditCheckpoint.objects.count() == 2
    assert periodic_runs("audit_exports_purge") == 1  # every ten minutes


def test_of_several_workers_asking_at_once_one_enqueues_the_run(db):
    now = timezone.now()
    every = datetime.timedelta(seconds=60)
    claims = [scheduled_run_claim(name="audit_log_seal", every=every, now=now) for _ in range(3)]
    assert claims == [True, False, False]
    assert scheduled_run_claim(name="audit_log_seal", every=every, now=now + every)


def test_the_seal_goes_ahead_of_the_jobs_waiting(compliance_client, log):
    job_from(compliance_client.post(EXPORT, {"format": "csv"}))
    run_worker_loop()
    order = list(DBTaskResult.objects.order_by("started_at").values_list("task_path", flat=True))
    assert order[0] == "registrations.tasks.audit_log_seal"
    assert order[-1] == "registrations.tasks.audit_job_run"


# The encrypted file format -----------------------------------------------------------------------


def frames(data: bytes) -> list[bytes]:
    """The frames of an encrypted stream, without the magic line."""
    body, found = data[len(FRAMES_MAGIC) :], []
    while body:
        length = int.from_bytes(body[:4], "big")
        found.append(body[: 4 + length])
        body = body[4 + length :]
    return found


def decrypted(data: bytes, stream_id: int = 7) -> bytes:
    return b"".join(decrypt_frames(io.BytesIO(data).read, stream_id=stream_id))


def test_the_encrypted_stream_round_trips_chunk_by_chunk():
    chunks = [b"first,", b"second,", b"third"]
    data = b"".join(encrypt_frames(chunks, stream_id=7))
    assert len(frames(data)) == 3
    assert decrypted(data) == b"first,second,third"
    assert decrypted(b"".join(encrypt_frames([], stream_id=7))) == b""


@pytest.mark.parametrize(
    "damage",
    [
        lambda parts: [parts[1], parts[0], parts[2]],  # frames swapped
        lambda parts: [parts[0], parts[2]],  # a frame dropped
        lambda parts: parts[:2],  # cut before the last frame
        lambda parts: [*parts, parts[2]],  # a frame repeated after the last
    ],
)
def test_frames_moved_dropped_or_cut_do_not_decrypt(damage):
    data = b"".join(encrypt_frames([b"a", b"b", b"c"], stream_id=7))
    damaged = FRAMES_MAGIC + b"".join(damage(frames(data)))
    with pytest.raises(DecryptionError):
        decrypted(damaged)


def test_a_stream_of_another_export_does_not_decrypt_as_this_one():
    data = b"".join(encrypt_frames([b"a"], stream_id=8))
    with pytest.raises(DecryptionError, match="out of place"):
        decrypted(data, stream_id=7)
    assert re.match(rb"simreg-frames-v1\n", data)
