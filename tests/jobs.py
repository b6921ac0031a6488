"""Running the job worker inside a test, and the audit page's jobs from end to end.

The jobs run for real: the database backend's own worker (`db_worker --batch`) takes them from
the queue, in this process, and exits once the queue is empty.
"""

from __future__ import annotations

import contextlib
import io
import signal
from collections.abc import Iterator
from unittest import mock

from django.core.management import call_command
from django.http import HttpResponse, StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from registrations.models import AuditJob

SIGNALS = [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGQUIT", signal.SIGTERM)]


@contextlib.contextmanager
def worker_in_test() -> Iterator[None]:
    """Let a worker run inside the test's transaction.

    Between tasks the worker closes database connections that are too old or not in autocommit
    mode, which the test's transaction is: as Django's test client does for requests, the
    connection is kept. The worker also takes over Ctrl+C and SIGTERM: they are given back.
    """
    handlers = {number: signal.getsignal(number) for number in SIGNALS}
    try:
        with mock.patch("django_tasks_db.management.commands.db_worker.close_old_connections"):
            yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)


def run_jobs() -> None:
    """Run every queued job to its end (not the periodic tasks: `run_worker` enqueues those)."""
    with worker_in_test():
        call_command(
            "db_worker",
            batch=True,
            startup_delay=False,
            reload=False,
            verbosity=0,
            stdout=io.StringIO(),
        )


def run_worker_loop() -> None:
    """One round of `run_worker --batch`: the periodic tasks that are due, then every job."""
    with worker_in_test():
        call_command("run_worker", batch=True, stdout=io.StringIO())


def job_from(response: HttpResponse) -> AuditJob:
    """The job a start redirected to."""
    assert response.status_code == 302, response.status_code
    location = response["Location"]
    job = AuditJob.objects.order_by("-pk").first()
    assert job is not None and location == reverse("audit-job", args=[job.pk]), location
    return job


def verify_from_page(client: Client, data: dict | None = None) -> HttpResponse:
    """Verify the log from the audit page: start, let the worker run it, open the job page."""
    job = job_from(client.post(reverse("audit-verify"), data or {}))
    run_jobs()
    return client.get(reverse("audit-job", args=[job.pk]))


def export_from_page(client: Client, params: dict) -> StreamingHttpResponse:
    """Export from the audit page (`params`: the format and the filters): start, let the worker
    write the file, download it."""
    job = job_from(client.post(reverse("audit-export"), params))
    run_jobs()
    response = client.get(reverse("audit-job-download", args=[job.pk]))
    assert isinstance(response, StreamingHttpResponse), response.status_code
    return response
