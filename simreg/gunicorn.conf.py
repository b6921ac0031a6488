"""gunicorn settings for simreg (`make serve`, and production behind a TLS proxy).

    gunicorn -c simreg/gunicorn.conf.py

Everything can be set from the environment: GUNICORN_BIND (default 127.0.0.1:8000),
WEB_CONCURRENCY (worker processes; default 2 x cores + 1), GUNICORN_TIMEOUT (seconds a worker
may spend on one request, default 60).
"""

import multiprocessing
import os

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


def pre_fork(server, worker):
    # The start-up checks ran a query in this process: each worker opens its own connection.
    from django.db import connections

    connections.close_all()


# The access log names the path without its query string; identity data never travels in a
# URL, and neither does anything else a log should not hold. No referrer: it holds query strings.
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
