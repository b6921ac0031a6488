"""Seal the audit log: sign every chain's head now (the job worker does this periodically)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from registrations.audit import SealRefused, checkpoint_seal, public_key_hex, signing_key


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of every audit chain's head, so that verify_audit can "
        "detect a cut or re-hashed chain. Prints the checkpoint to record it elsewhere too."
    )
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--public-key",
            action="store_true",
            help="Print the public key that verifies the checkpoints, and stop.",
        )

    def handle(self, *args, public_key=False, **options):
        if public_key:
            self.stdout.write(public_key_hex(signing_key()))
            return
        try:
            checkpoint = checkpoint_seal()
        except SealRefused as exc:
            raise CommandError(_("Not sealed: %(problem)s") % {"problem": exc}) from exc
        if checkpoint is None:
            self.stdout.write(_("Nothing new to seal since the last checkpoint."))
            return
        self.stdout.write(
            _("Checkpoint #%(number)s: %(chains)s chains, root %(root)s")
            % {
                "number": checkpoint.number,
                "chains": len(checkpoint.heads),
                "root": checkpoint.root,
            }
        )
