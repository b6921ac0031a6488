"""Django's `createsuperuser`, with the password rules applied to DJANGO_SUPERUSER_PASSWORD too,
and the new superuser recorded in the audit log.

Django checks a password typed at its prompt against AUTH_PASSWORD_VALIDATORS, but takes the one
in DJANGO_SUPERUSER_PASSWORD as it is with --no-input: a deployment script would otherwise make
the most powerful account with the weakest password.
"""

from __future__ import annotations

import os

from django.contrib.auth.management.commands import createsuperuser
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from registrations import services

PASSWORD_VARIABLE = "DJANGO_SUPERUSER_PASSWORD"  # noqa: S105 (the name of a variable)


class Command(createsuperuser.Command):
    def handle(self, *args, **options):
        database = options["database"]
        if not options["interactive"] and PASSWORD_VARIABLE in os.environ:
            self.validate_environment_password(options)
        users = self.UserModel._default_manager.db_manager(database)
        newest = users.order_by("-pk").values_list("pk", flat=True).first() or 0
        super().handle(*args, **options)
        for user in users.filter(pk__gt=newest, is_superuser=True):
            services.user_password_changed(user=user, created=True)

    def validate_environment_password(self, options: dict) -> None:
        """The checks Django's prompt makes, on the password from the environment."""
        fields = [self.UserModel.USERNAME_FIELD, *self.UserModel.REQUIRED_FIELDS]
        values = {
            name: options.get(name) or os.environ.get(f"DJANGO_SUPERUSER_{name.upper()}")
            for name in fields
        }
        # Foreign keys and many-to-many fields do not help the similarity check: left out.
        plain = {
            name: value
            for name, value in values.items()
            if value and not self.UserModel._meta.get_field(name).is_relation
        }
        try:
            validate_password(os.environ[PASSWORD_VARIABLE], self.UserModel(**plain))
        except ValidationError as error:
            raise CommandError(f"{PASSWORD_VARIABLE}: " + " ".join(error.messages)) from None
