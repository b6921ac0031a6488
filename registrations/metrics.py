"""Prometheus metrics (served by registrations.metrics_views at `/metrics`).

Labels are names from a fixed set (a view's URL name, a status class, an audit action): never a
raw path, a user or a record. The queue depth and the worker's heartbeat are read from the
database when the scraper asks, not kept in memory.

Under gunicorn each worker process counts on its own: with PROMETHEUS_MULTIPROC_DIR set
(simreg/gunicorn.conf.py does), the counts go to files in that folder and `/metrics` adds up
those of every process of the server.
"""

from __future__ import annotations

import os

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_SECONDS = Histogram(
    "simreg_http_request_duration_seconds",
    "Time to answer a request, by view (URL name) and status class.",
    ["view", "status"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
AUDIT_APPENDS = Counter(
    "simreg_audit_events_appended",
    "Events appended to the audit log, by action.",
    ["action"],
)
SIGN_IN_FAILURES = Counter(
    "simreg_sign_in_failures",
    "Failed sign-ins: a wrong password, or an attempt refused by the throttle.",
    ["reason"],
)


def request_observed(*, view: str, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(view=view, status=f"{status // 100}xx").observe(seconds)


def audit_appended(action: str) -> None:
    AUDIT_APPENDS.labels(action=action).inc()


def sign_in_failed(reason: str) -> None:
    SIGN_IN_FAILURES.labels(reason=reason).inc()


class DatabaseCollector:
    """Gauges read from the database at scrape time: the job queue and the worker's heartbeat."""

    def collect(self):
        # Imported here: this module is imported by the audit chain, before any model exists.
        from django_tasks.base import TaskResultStatus
        from django_tasks_db.models import DBTaskResult

        from registrations import selectors

        queued = GaugeMetricFamily(
            "simreg_job_queue_depth", "Tasks waiting in the job queue (ready to run)."
        )
        heartbeat = GaugeMetricFamily(
            "simreg_worker_heartbeat_age_seconds",
            "Seconds since a job worker last recorded its heartbeat (absent: never).",
        )
        # A database that does not answer leaves both without a value; the rest still shows.
        try:
            ready = DBTaskResult.objects.filter(status=TaskResultStatus.READY).count()
            last = selectors.worker_heartbeat_last()
        except DatabaseError:
            ready = last = None
        if ready is not None:
            queued.add_metric([], ready)
        if last is not None:
            heartbeat.add_metric([], max(0.0, (timezone.now() - last).total_seconds()))
        yield queued
        yield heartbeat


def scrape_registry() -> CollectorRegistry:
    """This process's metrics, or every gunicorn worker's in multiprocess mode; with the
    gauges read from the database."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector())
    return registry


class _ProcessMetrics:
    """The default registry's metrics, for a registry of one scrape."""

    def collect(self):
        return REGISTRY.collect()
