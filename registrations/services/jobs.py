"""The job worker's own bookkeeping: when a periodic task is next due, and its heartbeat."""

from __future__ import annotations

import datetime

from registrations.models import ScheduledRun


def scheduled_run_claim(*, name: str, every: datetime.timedelta, now: datetime.datetime) -> bool:
    """Whether the caller should enqueue the periodic task `name` now.

    True for exactly one caller per period, however many workers ask at once: the conditional
    UPDATE that moves the due time on succeeds for one of them only.
    """
    ScheduledRun.objects.get_or_create(name=name, defaults={"due_at": now})
    return bool(ScheduledRun.objects.filter(name=name, due_at__lte=now).update(due_at=now + every))


def worker_heartbeat_record(*, now: datetime.datetime) -> None:
    """A job worker is alive at `now` (`/healthz` reports it stale when this grows old). With
    several workers, the latest beat stays."""
    name = ScheduledRun.WORKER_HEARTBEAT
    if ScheduledRun.objects.filter(name=name, due_at__lt=now).update(due_at=now):
        return
    ScheduledRun.objects.get_or_create(name=name, defaults={"due_at": now})
