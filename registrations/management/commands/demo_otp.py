import base64
import hmac
import time

from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import TOTP

from registrations import selectors
from registrations.management.commands.seed_demo import demo_totp_key
from registrations.models import User


class Command(BaseCommand):
    help = "Print the current sign-in code of a demo user that seed_demo enrolled."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--key",
            action="store_true",
            help="Print the key to add to an authenticator app instead of the current code.",
        )

    def handle(self, *args, username: str, key: bool = False, **options):
        user = User.objects.filter(username=username).first()
        device = selectors.second_factor_device_for(user=user) if user is not None else None
        # Only a key seed_demo derived: this command must not read a real user's codes.
        if device is None or not hmac.compare_digest(device.key, demo_totp_key(username)):
            raise CommandError(
                f"{username} has no demo authenticator: `python manage.py seed_demo` enrols the "
                "demo users who sign in with a code (supervisor, compliance, admin)."
            )
        if key:
            self.stdout.write(base64.b32encode(device.bin_key).decode())
            return
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        self.stdout.write(f"{totp.token():0{device.digits}d}")
        # A code signs in once: a second sign-in within the same period needs the next code.
        left = device.step - int(time.time() - device.t0) % device.step
        self.stderr.write(f"valid for {left} more seconds, once")
