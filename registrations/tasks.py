"""The tasks of the job worker (`manage.py run_worker`), and the periodic ones it enqueues.

The task backend stores arguments and return values in the database in plaintext, and a
failure's traceback with them: tasks take ids and plain values only, return counts or numbers,
and work on rows that hold no identity data.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from django.conf import settings
from django.utils import timezone
from django_tasks import task

from registrations.audit import checkpoint_seal
from registrations.notifications import notifications_deliver
from registrations.services import compliance, jobs

logger = logging.getLogger(__name__)

# Expired exports are deleted at most this long after their time (their downloads end on time
# regardless: the download checks the expiry itself).
PURGE_EVERY = datetime.timedelta(minutes=10)


@task()
def audit_job_run(job_id: int) -> None:
    """A verification or an export asked for from the audit page."""
    compliance.audit_job_run(job_id=job_id)


# Ahead of the jobs queued by people: a long queue must not leave the log unsealed.
@task(priority=50)
def audit_log_seal() -> int | None:
    """A signed checkpoint of every chain's head; its number, or None when nothing changed."""
    checkpoint = checkpoint_seal()
    return checkpoint.number if checkpoint is not None else None


@task(priority=10)
def audit_exports_purge() -> int:
    """Delete the files of expired exports; the number deleted."""
    return compliance.audit_exports_purge(now=timezone.now())


# Ahead of people's jobs: a customer waits for the message of a change made at the counter.
@task(priority=20)
def notifications_deliver_due() -> int:
    """Send the customer notifications that are due; the number sent."""
    return notifications_deliver()


def periodic_tasks() -> list[tuple[str, Callable, datetime.timedelta]]:
    """(name, task, period) of each task the worker enqueues by itself."""
    return [
        ("audit_log_seal", audit_log_seal, datetime.timedelta(seconds=settings.AUDIT_SEAL_SECONDS)),
        ("audit_exports_purge", audit_exports_purge, PURGE_EVERY),
        (
            "notifications_deliver_due",
            notifications_deliver_due,
            datetime.timedelta(seconds=settings.NOTIFY_SWEEP_SECONDS),
        ),
    ]


def periodic_tasks_enqueue(*, now: datetime.datetime) -> list[str]:
    """Enqueue each periodic task that is due; the names of those enqueued.

    Any number of workers may call this: each run is enqueued by one of them only.
    """
    enqueued = []
    for name, periodic, every in periodic_tasks():
        if jobs.scheduled_run_claim(name=name, every=every, now=now):
            periodic.enqueue()
            enqueued.append(name)
            logger.debug("Enqueued the periodic task %s", name)
    return enqueued
