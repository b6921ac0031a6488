"""Verify the audit log (in the database, or an exported file) and name every break.

The database check walks every chain, checks every signed checkpoint and each anchor given, and
prints each chain's head (`HEAD chain=C seq=S hash=H`). A head recorded outside simreg is an
anchor for a later check (`--anchor C:S:H`): it vouches for events newer than the last
checkpoint, which the checkpoints cannot yet.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from registrations.audit import (
    COMMAND_LINE,
    CSV,
    EXPORT_FORMATS,
    JSONL,
    Anchor,
    AuditCheck,
    audit_chain_check,
    trusted_public_keys,
    verify_export,
)


class Command(BaseCommand):
    help = (
        "Verify the audit log: every event, every link, every signed checkpoint; exit 1 if "
        "anything is wrong. With --file, verify an exported file instead, without the database."
    )
    # The chain needs no encryption key: a check must run even when the keys are being repaired.
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
            help="With --file: the file must hold every chain whole (an unfiltered export).",
        )
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            metavar="HEX",
            help=(
                "A trusted audit public key (hex) to check checkpoint signatures with; "
                "repeatable. Default: the configured signing key's and AUDIT_TRUSTED_PUBLIC_KEYS."
            ),
        )
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="CHAIN:SEQ:HASH",
            help=(
                "A head printed by an earlier check (HEAD chain=C seq=S hash=H) and recorded "
                "outside simreg: that event must still exist with exactly that hash. Repeatable; "
                "SEQ:HASH means chain 0."
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
                        "--anchor takes CHAIN:SEQ:HASH, a chain, a position and its "
                        "64-character hash: %(value)s"
                    )
                    % {"value": text}
                ) from exc
        keys = {key.strip().lower() for key in options["public_key"] if key.strip()}
        if file:
            if anchors:
                raise CommandError(_("--anchor checks the database's log; leave out --file."))
            self.verify_file(
                file,
                format or (CSV if file.lower().endswith(".csv") else JSONL),
                complete,
                keys or trusted_public_keys(),
            )
            return
        check = audit_chain_check(actor=None, origin=COMMAND_LINE, anchors=anchors)
        if check.ok:
            self.report_ok(check)
            return
        for problem in check.problems:
            self.stderr.write(_("BROKEN: %(problem)s") % {"problem": problem})
        sys.exit(1)

    def report_ok(self, check: AuditCheck) -> None:
        self.stdout.write(
            _("OK: %(count)s events in %(chains)s chains, every link intact")
            % {"count": check.chain.checked, "chains": check.chain.chains}
        )
        latest = check.checkpoints.latest
        if latest is None:
            self.stdout.write(_("No checkpoint yet: run seal_audit (the job worker runs it)."))
        else:
            self.stdout.write(
                _(
                    "%(count)s signed checkpoints verified; the newest, #%(number)s, "
                    "vouches for all but %(unsealed)s events"
                )
                % {
                    "count": check.checkpoints.checked,
                    "number": latest.number,
                    "unsealed": check.unsealed,
                }
            )
        for anchor_check in check.anchors:
            self.stdout.write(_("Anchor %(anchor)s matches") % {"anchor": anchor_check.anchor})
        for head in check.heads:
            # Not translated: scripts read these lines, and they are what --anchor accepts.
            self.stdout.write(f"HEAD chain={head.chain} seq={head.seq} hash={head.hash}")

    def verify_file(self, path: str, fmt: str, complete: bool, keys: set[str]) -> None:
        try:
            report = verify_export(path, fmt, require_complete=complete, public_keys=keys)
        except OSError as exc:
            self.stderr.write(_("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc})
            sys.exit(2)
        if not report.ok:
            self.stderr.write(_("BROKEN: %(problem)s") % {"problem": report.problem})
            sys.exit(1)
        if report.checked == 0 and report.checkpoints == 0:
            self.stdout.write(_("OK: the file holds no event"))
            return
        self.stdout.write(
            _(
                "OK: %(count)s events in %(chains)s chains, every hash intact; %(links)s links "
                "checked; %(checkpoints)s checkpoints (%(signatures)s signatures verified, "
                "%(heads)s heads found in the file)"
            )
            % {
                "count": report.checked,
                "chains": report.chains,
                "links": report.links_checked,
                "checkpoints": report.checkpoints,
                "signatures": report.signatures_checked,
                "heads": report.heads_checked,
            }
        )
        if not report.complete:
            self.stdout.write(
                _("The file is part of the log (a filtered export): %(gaps)s gaps.")
                % {"gaps": len(report.gaps) + len(report.starts_late)}
            )
