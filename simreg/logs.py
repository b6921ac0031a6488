"""Structured logs: one JSON object a line, tied to a request id (or a job's task id).

A log line holds the time, level, logger and message, the request id or task id, and for a
request its method, path (never the query string), status, duration and the signed-in user's id
(never a name). Nothing else of a record reaches the output: whatever a caller passes in `extra`
(Django's `django.request` log passes the request object itself) is left out, so no header,
body, form value or query string can slip into a log through it. An exception is written as its
type and the frames of its traceback, without its message, which may quote a value.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import traceback
import uuid
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime

# A request id sent by the proxy is kept when it is a short token of safe characters;
# anything else (spaces, line breaks, hundreds of characters) is replaced by a new one.
REQUEST_ID_HEADER = "X-Request-ID"
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

request_id_var: ContextVar[str] = ContextVar("simreg_request_id", default="")
task_id_var: ContextVar[str] = ContextVar("simreg_task_id", default="")

# The attributes of a request's log record (set by registrations.middleware.RequestLogMiddleware and
# read from gunicorn's access log atoms): the only ones written besides the fixed fields.
REQUEST_FIELDS = ("method", "path", "status", "duration_ms", "user_id")
PATH_MAX = 300


def request_id_from(header: str | None) -> str:
    """The request id to use: the header's value when it is a safe token, else a new one."""
    if header and SAFE_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


@contextlib.contextmanager
def task_context(task_id: str) -> Iterator[None]:
    """Log lines written inside carry the job's task id."""
    token = task_id_var.set(str(task_id)[:64])
    try:
        yield
    finally:
        task_id_var.reset(token)


def _gunicorn_access(record: logging.LogRecord) -> dict | None:
    """The request fields of a gunicorn access log record (its atoms), or None."""
    if record.name != "gunicorn.access" or not isinstance(record.args, Mapping):
        return None
    atoms = record.args
    try:
        status = int(atoms["s"])
    except (KeyError, TypeError, ValueError):
        status = None
    request_id = str(atoms["{x-request-id}o"])
    return {
        "request_id": request_id if SAFE_REQUEST_ID.fullmatch(request_id) else None,
        "method": str(atoms["m"])[:16],
        "path": str(atoms["U"])[:PATH_MAX],
        "status": status,
        "duration_ms": int(atoms["M"]) if str(atoms["M"]).isdigit() else None,
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line, from a fixed list of fields (see the module's docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        access = _gunicorn_access(record)
        if access is not None:
            entry["message"] = f"{access['method']} {access['path']} {access['status']}"
            entry.update(access)
        else:
            entry["message"] = record.getMessage()
            task_id = task_id_var.get()
            if task_id:
                entry["task_id"] = task_id
            else:
                entry["request_id"] = request_id_var.get() or None
            for name in REQUEST_FIELDS:
                if name not in record.__dict__:
                    continue
                value = record.__dict__[name]
                if isinstance(value, str):
                    entry[name] = value[:PATH_MAX]
                elif isinstance(value, int | float) and not isinstance(value, bool):
                    entry[name] = value
                else:
                    entry[name] = None
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["stack"] = "".join(traceback.format_tb(record.exc_info[2])).rstrip()
        return json.dumps(entry, ensure_ascii=False, default=str)
