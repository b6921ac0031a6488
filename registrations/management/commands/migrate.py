"""Django's `migrate`, run as the owner of the tables, then granting the app role its privileges.

With MIGRATION_DATABASE_URL set, DATABASE_URL is the app's role, which owns nothing and may only
append to the audit tables (registrations.db_roles); the owner's credentials serve only while
this command runs. pytest-django creates the test database with this command too, so the tests
run against the same privileges as production.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dj_database_url
from django.conf import settings
from django.core.management.base import CommandError
from django.core.management.commands import migrate
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.creation import TEST_DATABASE_PREFIX
from django.db.utils import load_backend
from django.utils.translation import gettext as _

from registrations.db_roles import app_role_grant

CREDENTIALS = ("USER", "PASSWORD", "HOST", "PORT", "NAME")


def owner_settings_dict(*, current: Mapping[str, Any], owner_url: str) -> dict[str, Any]:
    """The connection settings to migrate with: the owner's credentials, the rest unchanged.

    The test runner points the connection at a test database (TEST NAME, or "test_" and the
    database's name) before it migrates: that database is kept, never the owner's real one.
    """
    owner = dj_database_url.parse(owner_url)
    swapped = {**current, **{key: owner[key] for key in CREDENTIALS}}
    test_names = {(current.get("TEST") or {}).get("NAME"), TEST_DATABASE_PREFIX + owner["NAME"]}
    if current["NAME"] in test_names:
        swapped["NAME"] = current["NAME"]
    return swapped


@contextmanager
def owner_connection(*, alias: str) -> Iterator[None]:
    """Connect `alias` with the owner's credentials for a while, then as configured again."""
    owner_url = settings.MIGRATION_DATABASE_URL
    if not owner_url or alias != DEFAULT_DB_ALIAS:
        yield
        return
    connection = connections[alias]
    owner_vendor = load_backend(dj_database_url.parse(owner_url)["ENGINE"]).DatabaseWrapper.vendor
    if owner_vendor != connection.vendor:
        raise CommandError(
            _("MIGRATION_DATABASE_URL must name the same kind of database as DATABASE_URL.")
        )
    if connection.in_atomic_block:
        raise CommandError(_("migrate cannot switch to the owner's role inside a transaction."))
    configured = connection.settings_dict
    connection.close()
    # A new dict: the configured one is shared with settings.DATABASES and other threads.
    connection.settings_dict = owner_settings_dict(current=configured, owner_url=owner_url)
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict = configured


class Command(migrate.Command):
    help = (
        f"{migrate.Command.help} Runs as the owner (MIGRATION_DATABASE_URL) when set, then "
        "grants the app role (DATABASE_APP_ROLE) its privileges: append-only on the audit log."
    )

    def handle(self, *args, **options):
        database = options["database"]
        with owner_connection(alias=database):
            super().handle(*args, **options)
            if not (options["plan"] or options["check_unapplied"] or options["prune"]):
                self.grant_app_role(database=database, verbosity=options["verbosity"])

    def grant_app_role(self, *, database: str, verbosity: int) -> None:
        connection = connections[database]
        role = settings.DATABASE_APP_ROLE
        if database != DEFAULT_DB_ALIAS or not role or connection.vendor != "postgresql":
            return
        grant = app_role_grant(connection=connection, role=role)
        if not grant.ok:
            self.stderr.write(grant.message, self.style.WARNING)
        elif verbosity >= 1:
            self.stdout.write(grant.message)
