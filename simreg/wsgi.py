"""WSGI entry point. Start-up stops here when the keys cannot read the stored data, or the
private storage (the folder or the bucket of the document copies) cannot be reached."""

import os

from django.core.wsgi import get_wsgi_application

from simreg.startup import stop_on_startup_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simreg.settings")

with stop_on_startup_error():
    application = get_wsgi_application()

    from registrations.checks import assert_keys_work, assert_storage_reachable

    assert_keys_work()
    assert_storage_reachable()
