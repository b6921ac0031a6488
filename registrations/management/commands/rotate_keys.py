"""Re-encrypt stored data under the first key of FIELD_ENCRYPTION_KEYS; recompute blind indexes."""

from __future__ import annotations

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from registrations.crypto import DecryptionError
from registrations.services.keys import RotationError, RotationReport, keys_check, keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted field and document copy under the first key of "
        "FIELD_ENCRYPTION_KEYS, in batches; safe to stop and run again (it continues where it "
        "stopped). --reindex also recomputes the blind indexes with the current "
        "BLIND_INDEX_KEY and BLIND_INDEX_BITS. --check only says whether the older keys are "
        "still needed."
    )
    # The start-up check refuses a changed BLIND_INDEX_KEY or BLIND_INDEX_BITS, which is when
    # --reindex is needed.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Rows per transaction.")
        parser.add_argument(
            "--limit-batches",
            type=int,
            default=None,
            help="Stop after this many batches that re-encrypted something (run again to go on).",
        )
        parser.add_argument(
            "--reindex",
            action="store_true",
            help=(
                "Also recompute every blind index (after BLIND_INDEX_KEY or BLIND_INDEX_BITS "
                "was changed)."
            ),
        )
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing: check that everything decrypts with the first key alone.",
        )

    def progress(self, label: str, done: int, total: int) -> None:
        self.stdout.write(f"{label}: {done}/{total}")

    def handle(self, *args, batch_size, limit_batches, reindex, check, **options):
        if batch_size < 1:
            raise CommandError(_("--batch-size must be at least 1."))
        if limit_batches is not None and limit_batches < 1:
            raise CommandError(_("--limit-batches must be at least 1."))
        if check and reindex:
            raise CommandError(_("--check changes nothing; run --reindex on its own."))
        try:
            if check:
                report = keys_check(batch_size=batch_size, progress=self.progress)
            else:
                report = keys_rotate(
                    batch_size=batch_size,
                    limit_batches=limit_batches,
                    reindex=reindex,
                    progress=self.progress,
                )
        except (RotationError, DecryptionError) as exc:
            raise CommandError(str(exc)) from exc
        self.summarise(report)
        if check and not report.old_keys_removable:
            sys.exit(1)

    def summarise(self, report: RotationReport) -> None:
        if report.mode != "check":
            rows = sum(report.rows.values())
            self.stdout.write(
                _("Re-encrypted %(rows)s rows and %(files)s document files under the first key.")
                % {"rows": rows, "files": report.documents}
            )
        if report.reindexed or report.mode == "reindex":
            self.stdout.write(
                _("Recomputed %(count)s blind indexes.") % {"count": report.reindexed}
            )
        if report.missing_documents:
            self.stdout.write(
                _("%(count)s document copies have no file on disk (nothing to re-encrypt): %(ids)s")
                % {
                    "count": len(report.missing_documents),
                    "ids": ", ".join(f"#{pk}" for pk in report.missing_documents),
                }
            )
        if not report.finished:
            self.stdout.write(
                _("Stopped after the batches asked for: run rotate_keys again to continue.")
            )
            return
        if report.mode == "reindex":
            self.stdout.write(
                _(
                    "Every blind index is computed with the current BLIND_INDEX_KEY and "
                    "BLIND_INDEX_BITS (%(bits)s bits): the start-up check accepts them now."
                )
                % {"bits": settings.BLIND_INDEX_BITS}
            )
        stale = sum(report.stale.values())
        if stale or report.stale_documents:
            self.stdout.write(
                _(
                    "%(rows)s rows and %(files)s document files still need an older key: run "
                    "rotate_keys without --check."
                )
                % {"rows": stale, "files": report.stale_documents}
            )
            return
        self.stdout.write(
            _(
                "All data decrypts with the first key alone: the other keys can now be removed "
                "from FIELD_ENCRYPTION_KEYS."
            )
        )
