"""Verifications and exports of the audit log asked for from the audit page, run as jobs.

The web request only records the job and enqueues it; the job worker (`manage.py run_worker`)
runs it, reporting progress on the job row as it goes. An export is written to private storage
encrypted chunk by chunk (registrations.crypto.encrypt_frames), so that neither memory nor the
disk ever holds it in plaintext, and is kept until AUDIT_EXPORT_TTL_HOURS after it finished. Only
the compliance admin who asked for it may download it; each download is an audit event.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import secrets
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from registrations import selectors
from registrations.audit import (
    Anchor,
    AuditExport,
    AuditFilters,
    Origin,
    audit_chain_check,
    audit_export_ended,
    audit_export_started,
    audit_record,
)
from registrations.crypto import DecryptionError, decrypt_frames, encrypt_frames
from registrations.models import AuditEvent, AuditJob, User
from registrations.storage import STORAGE_ERRORS, files_with_times, open_stream, private_storage

EXPORTS_FOLDER = "audit-exports"
# An export reports its progress after this many more rows (a verification reports every few
# thousand events by itself).
PROGRESS_EVERY_ROWS = 5000
# A running job reports progress every few seconds; one silent for this long lost its worker.
STALE_AFTER = datetime.timedelta(hours=6)
FILTER_NAMES = ("since", "until", "actor", "action", "store", "reference")


class ExportUnavailable(Exception):
    """An export's file cannot be downloaded: it expired, or it can no longer be read."""

    def __init__(self, *, expired: bool) -> None:
        super().__init__("expired" if expired else "unreadable")
        self.expired = expired


def export_ttl() -> datetime.timedelta:
    return datetime.timedelta(hours=settings.AUDIT_EXPORT_TTL_HOURS)


# Starting a job (in the web request) ----------------------------------------------------------


def _filters_as_json(filters: AuditFilters) -> dict[str, str]:
    values = {name: getattr(filters, name) for name in FILTER_NAMES}
    return {
        name: value.isoformat() if isinstance(value, datetime.datetime) else value
        for name, value in values.items()
        if value
    }


def _filters_from_json(values: dict[str, str]) -> AuditFilters:
    moments = {
        name: datetime.datetime.fromisoformat(values[name])
        for name in ("since", "until")
        if values.get(name)
    }
    texts = {name: values.get(name, "") for name in ("actor", "action", "store", "reference")}
    return AuditFilters(**moments, **texts)


def _enqueue(job: AuditJob) -> None:
    # The task row is written in the same transaction as the job (the database backend), so
    # a job is never left without its task, nor a task without its job.
    from registrations import tasks

    result = tasks.audit_job_run.enqueue(job.pk)
    job.task_id = str(result.id)
    job.save(update_fields=["task_id"])


def _new_job(*, kind: str, user: User, origin: Origin, **values: Any) -> AuditJob:
    return AuditJob.objects.create(
        kind=kind,
        requested_by=user,
        ip=origin.ip,
        user_agent=origin.user_agent[:300],
        **values,
    )


@transaction.atomic
def audit_job_start_verify(
    *, user: User, origin: Origin, anchors: Sequence[Anchor] = ()
) -> AuditJob:
    """Record a verification of the whole log against `anchors`, and enqueue it."""
    job = _new_job(
        kind=AuditJob.Kind.VERIFY,
        user=user,
        origin=origin,
        anchors=[dataclasses.asdict(anchor) for anchor in anchors],
    )
    _enqueue(job)
    return job


@transaction.atomic
def audit_job_start_export(
    *, user: User, origin: Origin, filters: AuditFilters, fmt: str
) -> AuditJob:
    """Record an export of the events that match `filters`, in `fmt`, and enqueue it."""
    AuditExport(filters=filters, fmt=fmt)  # refuses an unknown format before anything is saved
    job = _new_job(
        kind=AuditJob.Kind.EXPORT,
        user=user,
        origin=origin,
        format=fmt,
        filters=_filters_as_json(filters),
    )
    _enqueue(job)
    return job


# Running a job (in the worker) ------------------------------------------------------------------


def _progress_recorder(job: AuditJob) -> Callable[[int, int], None]:
    def record(done: int, total: int) -> None:
        AuditJob.objects.filter(pk=job.pk).update(
            progress_done=done, progress_total=max(done, total), updated_at=timezone.now()
        )

    return record


def _finish(
    job: AuditJob, *, done: int, now: datetime.datetime | None = None, **values: Any
) -> None:
    now = now or timezone.now()
    AuditJob.objects.filter(pk=job.pk).update(
        state=AuditJob.State.FINISHED,
        progress_done=done,
        progress_total=done,
        finished_at=now,
        updated_at=now,
        **values,
    )


def audit_job_run(*, job_id: int) -> None:
    """Run a queued job to its end: finished with its outcome, or failed.

    Not one transaction: progress must be seen while the job runs, and an export's "started"
    event must stay even if the export dies (registrations.audit.export).
    """
    now = timezone.now()
    # Only the worker that moves the job out of the queue runs it, should its task be
    # delivered twice.
    claimed = AuditJob.objects.filter(pk=job_id, state=AuditJob.State.QUEUED).update(
        state=AuditJob.State.RUNNING, started_at=now, updated_at=now
    )
    if not claimed:
        return
    job = AuditJob.objects.select_related("requested_by").get(pk=job_id)
    try:
        if job.kind == AuditJob.Kind.VERIFY:
            _verify(job)
        else:
            _export(job)
    except BaseException:
        # Whatever stopped it (an error, the worker told to stop at once), the page says so.
        now = timezone.now()
        AuditJob.objects.filter(pk=job.pk).update(
            state=AuditJob.State.FAILED, finished_at=now, updated_at=now
        )
        raise


def _origin(job: AuditJob) -> Origin:
    return Origin(ip=job.ip, user_agent=job.user_agent)


def _verify(job: AuditJob) -> None:
    check = audit_chain_check(
        actor=job.requested_by,
        origin=_origin(job),
        anchors=[Anchor(**anchor) for anchor in job.anchors],
        progress=_progress_recorder(job),
    )
    result = check.details()
    if check.ok:
        # Each chain's head, as an anchor to record outside simreg for a later check.
        result["heads"] = [str(head) for head in check.heads]
    _finish(job, done=check.chain.checked, result=result)


class _ChunkReader(io.RawIOBase):
    """A file that reads an iterator of byte strings, so that a storage streams it to its end
    (Storage.save reads a file in chunks) without the whole of it in memory."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _export_total(export: AuditExport) -> int:
    """How many rows the export will hold, for its progress.

    A filtered export counts its rows through the filters' indexes; a whole log is not counted
    (a billion rows): its last event number is near enough, and the end sets the true count.
    """
    last = export.fix_extent()
    if export.filters.any:
        return export.filters.events().filter(id__lte=last).count()
    return last


def _reporting(
    chunks: Iterable[bytes], *, export: AuditExport, total: int, record: Callable[[int, int], None]
) -> Iterator[bytes]:
    reported = 0
    for chunk in chunks:
        yield chunk
        if export.rows - reported >= PROGRESS_EVERY_ROWS:
            reported = export.rows
            record(reported, total)


def _export(job: AuditJob) -> None:
    export = AuditExport(filters=_filters_from_json(job.filters), fmt=job.format)
    actor, origin = job.requested_by, _origin(job)
    record = _progress_recorder(job)
    name = f"{EXPORTS_FOLDER}/{secrets.token_hex(16)}.{job.format}.enc"
    stored_name = ""
    storage = private_storage()
    started = audit_export_started(export=export, actor=actor, origin=origin)
    try:
        total = _export_total(export)
        record(0, total)
        chunks = _reporting(export.chunks(), export=export, total=total, record=record)
        # Buffered: a read of n bytes returns n bytes until the end (an object storage's upload
        # takes a shorter read for the end of the file).
        stream = io.BufferedReader(_ChunkReader(encrypt_frames(chunks, stream_id=job.pk)))
        stored_name = storage.save(name, File(stream, name=name))
    finally:
        # The end is recorded whatever happened, with the rows written so far.
        audit_export_ended(export=export, actor=actor, origin=origin, complete=bool(stored_name))
        if not stored_name:
            _delete_quietly(name)  # a part of an export is no export
    finished = timezone.now()
    _finish(
        job,
        done=export.rows,
        now=finished,
        stored_name=stored_name,
        expires_at=finished + export_ttl(),
        result={
            "rows": export.rows,
            "filename": export.filename,
            "started_event": started.id,
            "bytes": storage.size(stored_name),
        },
    )


# Downloading an export ----------------------------------------------------------------------


def audit_export_download(*, job: AuditJob, actor: User, origin: Origin) -> Iterator[bytes]:
    """The export's file, decrypted chunk by chunk as it is sent; the download is recorded
    before the first byte leaves.

    Raises ExportUnavailable when the export has expired or its file cannot be read (deleted,
    damaged, or encrypted under a key no longer configured): nothing is recorded then.
    """
    if not job.stored_name or job.expires_at is None or job.expires_at <= timezone.now():
        raise ExportUnavailable(expired=True)
    try:
        file = open_stream(job.stored_name)
    except STORAGE_ERRORS:  # gone, or the storage cannot be reached now
        raise ExportUnavailable(expired=False) from None
    chunks = decrypt_frames(file.read, stream_id=job.pk, where="an audit export")
    try:
        # The first chunk shows whether the file can be read at all, before anything is sent.
        first = next(chunks)
    except DecryptionError:
        file.close()
        raise ExportUnavailable(expired=False) from None
    except BaseException:
        file.close()
        raise
    audit_record(
        actor=actor,
        action=AuditEvent.Action.EXPORT_DOWNLOADED,
        origin=origin,
        details={
            "job": job.pk,
            "format": job.format,
            "rows": job.result.get("rows"),
            "started_event": job.result.get("started_event"),
        },
    )
    return _sent_then_closed(first, chunks, file)


def _sent_then_closed(first: bytes, rest: Iterator[bytes], file: BinaryIO) -> Iterator[bytes]:
    try:
        yield first
        yield from rest
    finally:
        file.close()


# Housekeeping (a periodic task) -------------------------------------------------------------


def audit_exports_purge(*, now: datetime.datetime) -> int:
    """Delete the files of expired exports, and files no job names (left by a worker that
    died while writing); mark jobs whose worker went silent as failed. Returns the number of
    files deleted."""
    deleted = 0
    for job in selectors.audit_job_exports_expired(now=now).iterator():
        private_storage().delete(job.stored_name)
        AuditJob.objects.filter(pk=job.pk, stored_name=job.stored_name).update(stored_name="")
        deleted += 1
    deleted += _orphans_delete(now=now)
    AuditJob.objects.filter(state=AuditJob.State.RUNNING, updated_at__lt=now - STALE_AFTER).update(
        state=AuditJob.State.FAILED, finished_at=now, updated_at=now
    )
    return deleted


def _orphans_delete(*, now: datetime.datetime) -> int:
    known = selectors.audit_job_stored_names()
    deleted = 0
    # One listing with the times (on object storage, a page of a thousand names a request).
    for name, modified in list(files_with_times(EXPORTS_FOLDER)):
        path = f"{EXPORTS_FOLDER}/{name}"
        # A file younger than an export may live may still be being written by a worker.
        if path in known or modified > now - export_ttl():
            continue
        private_storage().delete(path)
        deleted += 1
    return deleted


def _delete_quietly(name: str) -> None:
    # A storage that cannot be reached leaves it to the purge of files no job names.
    with contextlib.suppress(STORAGE_ERRORS):
        private_storage().delete(name)
