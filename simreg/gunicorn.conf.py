"""gunicorn settings for simreg (`make serve`, and production behind a TLS proxy).

    gunicorn -c simreg/gunicorn.conf.py

Everything can be set from the environment: GUNICORN_BIND (default 127.0.0.1:8000),
WEB_CONCURRENCY (worker processes; default 2 x cores + 1), GUNICORN_TIMEOUT (seconds a worker
may spend on one request, default 60).
"""

import multiprocessing
import os
import re
from pathlib import Path

wsgi_app = "simreg.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")

# Sync workers: each request holds one process, and nothing is shared between them but the
# database and the private storage.
worker_class = "sync"
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count() + 1)
# A request that takes longer (an upload to the storage retried, a slow query) is killed and
# logged; the proxy in front should wait a little longer than this.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5

# No control socket (gunicorn 25.1+): it would be a file under the user's home, shared by every
# gunicorn of that user, and nothing here uses it.
control_socket_disable = True

# The app is loaded once, before the workers start: a missing key, keys that cannot read the
# data or a storage that cannot be reached stop gunicorn with one line (simreg/wsgi.py), instead
# of workers failing to boot one after another.
preload_app = True


# Metrics (registrations.metrics): each worker process writes its counts to files in this folder,
# which `/metrics` adds up; by default a folder of var/ for each address served, so that two
# servers on one machine do not mix their counts. Set before the app is loaded (prometheus_client
# reads it on import) and emptied once when gunicorn starts, not again when a HUP reloads this
# file.
metrics_dir = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    or Path(__file__).resolve().parent.parent
    / "var"
    / "prometheus"
    / re.sub(r"[^A-Za-z0-9.-]", "_", bind[0])
)
if os.environ.get("SIMREG_METRICS_DIR_OWNER") != str(os.getpid()):
    metrics_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["SIMREG_METRICS_DIR_OWNER"] = str(os.getpid())
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def pre_fork(server, worker):
    # The start-up checks ran a query in this process: each worker opens its own connection.
    from django.db import connections

    connections.close_all()


# The access log names the path without its query string; identity data never travels in a
# URL, and neither does anything else a log should not hold. No referrer: it holds query strings.
accesslog = "-"
errorlog = "-"
access_log_format = (
    '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" %({x-request-id}o)s'
)

# With LOG_FORMAT=json (the default without DJANGO_DEBUG, as in simreg/settings.py), gunicorn's
# own lines are JSON too: an access line holds the method, path, status, duration and request
# id only (simreg.logs), not the address or the user agent of the text format above.
log_format = os.environ.get("LOG_FORMAT", "").strip().lower() or (
    "text"
    if os.environ.get("DJANGO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    else "json"
)
if log_format == "json":
    logconfig_dict = {
        # Not passed on to the root logger, whose handler the app's settings replace.
        "loggers": {
            name: {"level": "INFO", "handlers": [handler], "propagate": False}
            for name, handler in (
                ("gunicorn.error", "error_console"),
                ("gunicorn.access", "console"),
            )
        },
        "formatters": {"json": {"()": "simreg.logs.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
    }
