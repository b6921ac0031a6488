"""Export the audit log (or part of it) to a CSV or JSON Lines file, streamed."""

from __future__ import annotations

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext as _

from registrations.audit import (
    COMMAND_LINE,
    CSV,
    EXPORT_FORMATS,
    JSONL,
    MAX_YEAR,
    MIN_YEAR,
    AuditExport,
    AuditFilters,
    audit_export_ended,
    audit_export_started,
    time_in_range,
)
from registrations.models import AuditEvent


def parse_time(value: str) -> datetime.datetime:
    """An ISO date or date-time; without a UTC offset it is local time (settings.TIME_ZONE)."""
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise ValueError(value)
        moment = datetime.datetime.combine(day, datetime.time())
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


class Command(BaseCommand):
    help = (
        "Export audit events as CSV or JSON Lines, with their hashes (verify the file with "
        "`verify_audit --file`). The export is itself recorded in the audit log: when it "
        "starts, and when it ends with the number of events written."
    )
    # The audit log holds no ciphertext: it can be exported even while the keys are repaired.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help="Events at or after this time (ISO date or date-time; local time)."
        )
        parser.add_argument(
            "--until", help="Events before this time (ISO date or date-time; local time)."
        )
        parser.add_argument("--actor", default="", help="Username of the user who acted.")
        parser.add_argument(
            "--action",
            default="",
            choices=AuditEvent.Action.values,
            metavar="ACTION",
            help="One action: " + ", ".join(AuditEvent.Action.values) + ".",
        )
        parser.add_argument("--store", default="", help="Store code.")
        parser.add_argument("--reference", default="", help="Registration reference.")
        parser.add_argument("--format", default=JSONL, choices=EXPORT_FORMATS)
        parser.add_argument(
            "--output", default="-", help="File to write (default: standard output)."
        )

    def handle(self, *args, **options):
        try:
            since = parse_time(options["since"]) if options["since"] else None
            until = parse_time(options["until"]) if options["until"] else None
        except ValueError as exc:
            raise CommandError(_("Not a date or date-time: %(value)s") % {"value": exc}) from exc
        for option, moment in (("--since", since), ("--until", until)):
            if moment is not None and not time_in_range(moment):
                raise CommandError(
                    _("%(option)s must fall in the years %(first)s to %(last)s.")
                    % {"option": option, "first": MIN_YEAR, "last": MAX_YEAR}
                )
        if since and until and until <= since:
            raise CommandError(_("--until must be later than --since."))
        filters = AuditFilters(
            since=since,
            until=until,
            actor=options["actor"].strip(),
            action=options["action"],
            store=options["store"].strip(),
            reference=options["reference"].strip().upper(),
        )
        export = AuditExport(filters=filters, fmt=options["format"])
        output = options["output"]
        try:
            file = None if output == "-" else open(output, "wb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(
                _("Cannot write %(output)s: %(error)s") % {"output": output, "error": exc}
            ) from exc
        complete = False
        try:
            # Before the first byte is written: a run killed half-way leaves this trace.
            audit_export_started(export=export, actor=None, origin=COMMAND_LINE)
            for chunk in export.chunks():
                if file is None:
                    # Chunks end on a row boundary, so each one decodes on its own.
                    self.stdout.write(chunk.decode(), ending="")
                else:
                    file.write(chunk)
            if file is not None:
                file.close()  # a file that fails to close is not a finished export
            complete = True
        finally:
            if file is not None and not file.closed:
                file.close()
            # Once the file is written (or the export failed half-way): the event records the
            # rows that actually left.
            if export.started_id is not None:
                audit_export_ended(
                    export=export, actor=None, origin=COMMAND_LINE, complete=complete
                )
        if output != "-":
            self.stdout.write(
                _("%(rows)s events exported to %(output)s (%(format)s).")
                % {
                    "rows": export.rows,
                    "output": output,
                    "format": "CSV" if export.format == CSV else "JSON Lines",
                }
            )
