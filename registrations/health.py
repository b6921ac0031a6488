"""What `/healthz` reports: each part the app needs to serve, as "ok" or what is wrong with it.

Cheap enough for a load balancer to ask every few seconds: one query, one HEAD request to the
bucket (or a look at the folder), the key canary, one row for the job worker's heartbeat. It
holds no secret and no identity value: states only, never an error's message.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from registrations import selectors
from registrations.checks import key_problems
from registrations.storage import storage_problem

OK = "ok"


def worker_stale_after() -> datetime.timedelta:
    """A worker seals the log every AUDIT_SEAL_SECONDS: two periods without a heartbeat mean
    that none is running."""
    return datetime.timedelta(seconds=2 * settings.AUDIT_SEAL_SECONDS)


def health_report() -> dict[str, str]:
    """{"database", "storage", "keys", "worker"}: "ok" each, when all is well."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = OK
    except DatabaseError:
        database = "unavailable"
    report = {
        "database": database,
        "storage": OK if storage_problem() is None else "unavailable",
        "keys": OK if database == OK and not key_problems() else "error",
        "worker": "unknown",
    }
    if database == OK:
        try:
            last = selectors.worker_heartbeat_last()
        except DatabaseError:
            last = None
        if last is None:
            report["worker"] = "missing"
        elif timezone.now() - last > worker_stale_after():
            report["worker"] = "stale"
        else:
            report["worker"] = OK
    return report


def healthy(report: dict[str, str]) -> bool:
    return all(state == OK for state in report.values())
