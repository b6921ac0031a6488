"""A setting the app cannot start with stops it with one line saying what to do.

A traceback through Django's settings machinery hides the one line that matters, so the entry
points (manage.py, simreg/wsgi.py, simreg/asgi.py) print the message of a StartupError alone.
Kept free of Django settings: it is imported before they are read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured


class StartupError(ImproperlyConfigured):
    """A missing or malformed setting; the message names it and says how to set it."""


@contextmanager
def stop_on_startup_error() -> Iterator[None]:
    """Exit with the message of a StartupError (status 1) instead of a traceback."""
    try:
        yield
    except StartupError as error:
        sys.exit(" ".join(str(error).split()))
