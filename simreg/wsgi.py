"""WSGI entry point. Start-up stops here when the keys cannot read the stored data."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simreg.settings")

application = get_wsgi_application()

from registrations.checks import assert_keys_work  # noqa: E402

assert_keys_work()
