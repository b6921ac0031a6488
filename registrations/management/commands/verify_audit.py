"""Recompute the audit chain (in the database, or in an exported file) and name the first break."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from registrations.audit import COMMAND_LINE
from registrations.audit_export import CSV, EXPORT_FORMATS, JSONL, audit_chain_check, verify_export


class Command(BaseCommand):
    help = (
        "Verify the hash chain of the audit log and name the first broken link; exit 1 if "
        "broken. With --file, verify an exported file instead, without the database."
    )
    # The chain needs no key: a check must run even when the keys are being repaired.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--file", help="An export (CSV or JSON Lines) to verify on its own.")
        parser.add_argument(
            "--format",
            choices=EXPORT_FORMATS,
            help="Format of --file (default: from its extension, .csv or else JSON Lines).",
        )
        parser.add_argument(
            "--complete",
            action="store_true",
            help="With --file: the file must be the whole chain from event #1 (no filter).",
        )

    def handle(self, *args, file=None, format=None, complete=False, **options):
        if file:
            self.verify_file(
                file, format or (CSV if file.lower().endswith(".csv") else JSONL), complete
            )
            return
        report = audit_chain_check(actor=None, origin=COMMAND_LINE)
        if report.ok:
            self.stdout.write(_("OK: %(count)s events, chain intact") % {"count": report.checked})
            return
        self.fail(report.broken_seq, report.problem)

    def verify_file(self, path: str, fmt: str, complete: bool) -> None:
        try:
            report = verify_export(path, fmt, require_complete=complete)
        except OSError as exc:
            self.stderr.write(_("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc})
            sys.exit(2)
        if not report.ok:
            self.fail(report.broken_seq, report.problem)
        if report.checked == 0:
            self.stdout.write(_("OK: the file holds no event"))
        elif report.complete:
            self.stdout.write(
                _("OK: %(count)s events, chain intact from event #1 to #%(last)s")
                % {"count": report.checked, "last": report.last_seq}
            )
        else:
            self.stdout.write(
                _(
                    "OK: %(count)s events from #%(first)s to #%(last)s, every hash intact; "
                    "%(links)s links checked between consecutive events, %(gaps)s gaps "
                    "(a filtered export)"
                )
                % {
                    "count": report.checked,
                    "first": report.first_seq,
                    "last": report.last_seq,
                    "links": report.links_checked,
                    "gaps": len(report.gaps),
                }
            )

    def fail(self, seq: int | None, problem: str) -> None:
        if seq is None:
            self.stderr.write(_("BROKEN: %(problem)s") % {"problem": problem})
        else:
            self.stderr.write(
                _("BROKEN at event #%(seq)s: %(problem)s") % {"seq": seq, "problem": problem}
            )
        sys.exit(1)
