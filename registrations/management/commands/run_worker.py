"""The job worker: queued jobs, and the periodic tasks it enqueues by itself.

django-tasks has no scheduler. This loop runs the database backend's worker one task at a
time and, between tasks (at most every SCHEDULE_CHECK_SECONDS), enqueues each periodic task
that is due: the audit seal every AUDIT_SEAL_SECONDS, the purge of expired exports. Any number
of workers may run: each periodic run is enqueued by one of them only (ScheduledRun), and the
backend hands each task to one worker.

A task in progress holds its worker: the seal jumps the queue (a higher priority), but waits for
a running export to end. Run two workers where exports are long.

Each round of the loop (at most every HEARTBEAT_SECONDS), and every HEARTBEAT_SECONDS while a
task runs, the worker records a heartbeat in the database: `/healthz` reports the worker stale
when none came for 2 x AUDIT_SEAL_SECONDS.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connections
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django_tasks_db.management.commands.db_worker import Worker

from registrations.services.jobs import worker_heartbeat_record
from registrations.tasks import periodic_tasks_enqueue
from simreg.logs import task_context

SCHEDULE_CHECK_SECONDS = 5
HEARTBEAT_SECONDS = 5

logger = logging.getLogger(__name__)


def _beat() -> None:
    try:
        worker_heartbeat_record(now=timezone.now())
    except DatabaseError as exc:
        # A missed beat is reported by /healthz in time; the worker goes on.
        logger.warning("The job worker could not record its heartbeat: %s", type(exc).__name__)


class _HeartbeatWhileBusy:
    """Beats from a thread of its own while a task holds the loop: a long export is not a dead
    worker. The thread has its own database connection, closed when the task ends."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> None:
        self._thread.start()

    def __exit__(self, *exc_info) -> None:
        self._done.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._done.wait(HEARTBEAT_SECONDS):
                _beat()
        finally:
            connections.close_all()


class _OneTask(Worker):
    """The backend's worker, for at most one task; says whether it ran one."""

    ran = False
    beat_while_busy = False

    def run_task(self, db_task_result) -> None:
        self.ran = True
        # Its log lines carry the task's id, where a request's carry the request id.
        with task_context(str(db_task_result.id)):
            if not self.beat_while_busy:
                super().run_task(db_task_result)
                return
            with _HeartbeatWhileBusy():
                super().run_task(db_task_result)


class Command(BaseCommand):
    help = (
        "Run the job worker: verifications and exports asked for from the audit page, the "
        "periodic seal of the audit log and the purge of expired exports. Stop it with Ctrl+C "
        "or SIGTERM: a task in progress is finished first (a second signal stops it at once)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="Seconds to wait when no task is ready before looking again (default 1).",
        )
        parser.add_argument(
            "--batch",
            action="store_true",
            help="Enqueue the periodic tasks that are due, run every ready task, then exit.",
        )
        parser.add_argument(
            "--worker-id",
            default="",
            help="A name for this worker, unique among the workers (default: a random one).",
        )

    def handle(self, *args, interval: float, batch: bool, worker_id: str, **options):
        # The backend's worker announces every start and stop, once a round here: say less.
        logging.getLogger("django_tasks_db").setLevel(logging.WARNING)
        self.worker_id = worker_id or get_random_string(32)
        self.interval = max(0.0, interval)
        self.stopping = False
        self.busy = False
        if not batch:
            for stop in (signal.SIGINT, signal.SIGTERM):
                signal.signal(stop, self.stop)
            self.stdout.write(
                _("Job worker %(worker)s started.") % {"worker": self.worker_id}, ending="\n"
            )
        self.batch = batch
        next_check = next_beat = 0.0
        while not self.stopping:
            if time.monotonic() >= next_beat:
                _beat()
                next_beat = time.monotonic() + HEARTBEAT_SECONDS
            if time.monotonic() >= next_check:
                periodic_tasks_enqueue(now=timezone.now())
                next_check = time.monotonic() + SCHEDULE_CHECK_SECONDS
            if self.run_one():
                continue
            if batch:
                break
            time.sleep(self.interval)

    def run_one(self) -> bool:
        worker = _OneTask(
            queue_names=[DEFAULT_TASK_QUEUE_NAME],
            interval=self.interval,
            batch=True,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=1,
            worker_id=self.worker_id,
            excluded_queue_names=[],
        )
        # A batch run ends with its tasks (and may run inside a test's transaction).
        worker.beat_while_busy = not self.batch
        self.busy = True
        try:
            worker.run()
        finally:
            self.busy = False
        return worker.ran

    def stop(self, signum, frame) -> None:
        if self.stopping or not self.busy:
            # Idle (or told twice): nothing to finish.
            sys.exit(0 if not self.stopping else 1)
        self.stopping = True
        self.stderr.write(_("Stopping once the task in progress has finished."))
