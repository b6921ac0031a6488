"""Django's `changepassword` (which applies AUTH_PASSWORD_VALIDATORS), recorded in the audit
log: that the password changed, never what to."""

from __future__ import annotations

import getpass

from django.contrib.auth.management.commands import changepassword

from registrations import services


class Command(changepassword.Command):
    def handle(self, *args, **options):
        message = super().handle(*args, **options)
        # The user Django's command just changed, found the same way it finds them.
        username = options["username"] or getpass.getuser()
        user = changepassword.UserModel._default_manager.using(options["database"]).get(
            **{changepassword.UserModel.USERNAME_FIELD: username}
        )
        services.user_password_changed(user=user)
        return message
