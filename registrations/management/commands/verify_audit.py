"""Recompute the audit chain (in the database, or in an exported file) and name the first break.

The database check prints the head of the log (`HEAD seq=N hash=H`). Recorded outside simreg,
it is an anchor for a later check (`--anchor N:H`): the chain alone cannot show that the newest
events were deleted, or that every hash was recomputed from an edited event onward.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from registrations.audit import COMMAND_LINE
from registrations.audit_export import (
    CSV,
    EXPORT_FORMATS,
    JSONL,
    Anchor,
    AuditCheck,
    audit_chain_check,
    verify_export,
)


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
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help=(
                "A head printed by an earlier check (HEAD seq=SEQ hash=HASH) and recorded outside "
                "simreg: event SEQ must still exist with exactly that hash. Repeatable."
            ),
        )

    def handle(self, *args, file=None, format=None, complete=False, anchor=(), **options):
        anchors = []
        for text in anchor:
            try:
                anchors.append(Anchor.parse(text))
            except ValueError as exc:
                raise CommandError(
                    _(
                        "--anchor takes SEQ:HASH, an event number and its 64-character hash: "
                        "%(value)s"
                    )
                    % {"value": text}
                ) from exc
        if file:
            if anchors:
                raise CommandError(_("--anchor checks the database's log; leave out --file."))
            self.verify_file(
                file, format or (CSV if file.lower().endswith(".csv") else JSONL), complete
            )
            return
        check = audit_chain_check(actor=None, origin=COMMAND_LINE, anchors=anchors)
        if check.ok:
            self.report_ok(check)
            return
        if not check.chain.ok:
            self.stderr.write(self.broken(check.chain.broken_seq, check.chain.problem))
        for mismatch in check.mismatched:
            if mismatch.found_hash is None:
                what = _("event #%(seq)s no longer exists") % {"seq": mismatch.anchor.seq}
            else:
                what = _("event #%(seq)s now has the hash %(hash)s") % {
                    "seq": mismatch.anchor.seq,
                    "hash": mismatch.found_hash,
                }
            problem = _(
                "anchor #%(seq)s does not match: the log was truncated or re-written (%(what)s)"
            ) % {"seq": mismatch.anchor.seq, "what": what}
            self.stderr.write(self.broken(None, problem))
        sys.exit(1)

    def report_ok(self, check: AuditCheck) -> None:
        self.stdout.write(_("OK: %(count)s events, chain intact") % {"count": check.chain.checked})
        for anchor_check in check.anchors:
            self.stdout.write(_("Anchor #%(seq)s matches") % {"seq": anchor_check.anchor.seq})
        if check.head is not None:
            # Not translated: scripts read this line, and it is what --anchor accepts.
            self.stdout.write(f"HEAD seq={check.head.seq} hash={check.head.hash}")

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

    def broken(self, seq: int | None, problem: str) -> str:
        if seq is None:
            return _("BROKEN: %(problem)s") % {"problem": problem}
        return _("BROKEN at event #%(seq)s: %(problem)s") % {"seq": seq, "problem": problem}

    def fail(self, seq: int | None, problem: str) -> None:
        self.stderr.write(self.broken(seq, problem))
        sys.exit(1)
