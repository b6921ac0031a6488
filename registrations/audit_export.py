"""Exports of the audit log (CSV, JSON Lines) and verification of the chain.

An export is streamed: rows come from the database in chunks and leave as encoded lines, so
memory stays flat whatever the number of events. Every exported event carries `prev_hash` and
`hash`, and its other columns are exactly the values its hash covers (audit.canonical_form), so
the file alone is enough to check it: `verify_export` recomputes each hash and each link.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) get a leading apostrophe, as OWASP advises; a cell that starts with an apostrophe gets
one too, so that removing exactly one leading apostrophe from every cell that has one gives the
original text back. `verify_export` does that before hashing.

An export is recorded twice: an `exported` event with state "started" before its first byte
leaves (so that even a worker killed half-way leaves a trace), and one with state "finished" or
"interrupted" and the number of rows once it ends.

The chain alone cannot show that the newest events were deleted, or that every hash was
recomputed from an edited event onward: the result is a shorter or different chain that is
intact. An anchor (an event number and its hash, recorded outside simreg after a check) closes
that gap: `audit_chain_check` confirms that each anchor's event still exists with that hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from registrations import selectors
from registrations.audit import (
    AT_FORMAT,
    COMMAND_LINE,
    GENESIS_HASH,
    ChainReport,
    Origin,
    audit_chain_verify,
    audit_record,
    canonical_form,
)
from registrations.models import AuditEvent, User

CSV = "csv"
JSONL = "jsonl"
EXPORT_FORMATS = (CSV, JSONL)
CONTENT_TYPES = {CSV: "text/csv; charset=utf-8", JSONL: "application/jsonl; charset=utf-8"}

# The keys of audit.canonical_form, in CSV column order, then the event's own hash.
PAYLOAD_KEYS = (
    "seq",
    "at",
    "actor_id",
    "actor_username",
    "action",
    "registration_reference",
    "store_code",
    "ip",
    "user_agent",
    "reason",
    "fields",
    "details",
    "prev_hash",
)
COLUMNS = (*PAYLOAD_KEYS, "hash")

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
# Excel reads a CSV file as UTF-8 (Chinese names of stores, reasons) only after this mark.
UTF8_BOM = "\ufeff"
ROWS_PER_QUERY = 2000
BYTES_PER_CHUNK = 64 * 1024

# Filter times must fall in these years (local time): far enough from the limits of `datetime`
# that converting them to UTC never overflows, and wide enough for any event of this log.
MIN_YEAR = 2000
MAX_YEAR = 2999
# The largest event number a database can hold (a signed 64-bit integer).
MAX_SEQ = 2**63 - 1

# The states of an export's `exported` events.
STARTED = "started"
FINISHED = "finished"
INTERRUPTED = "interrupted"


def time_in_range(moment: datetime) -> bool:
    """Whether a filter time lies in the years MIN_YEAR to MAX_YEAR."""
    return MIN_YEAR <= moment.year <= MAX_YEAR


def event_number(text: str) -> int | None:
    """An event number written in ASCII digits, 1 to MAX_SEQ; None for anything else.

    `str.isdigit` alone is not enough: it accepts "²", which `int` refuses.
    """
    if not (text.isascii() and text.isdecimal()) or len(text) > len(str(MAX_SEQ)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_SEQ else None


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def protect_cell(text: str) -> str:
    """Make a CSV cell safe to open in a spreadsheet, reversibly (see the module docstring)."""
    if text.startswith((*FORMULA_TRIGGERS, ESCAPE)):
        return ESCAPE + text
    return text


def unprotect_cell(text: str) -> str:
    return text[1:] if text.startswith(ESCAPE) else text


@dataclass(frozen=True)
class AuditFilters:
    """What an audit page or export is restricted to; `since` inclusive, `until` exclusive."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str = ""
    action: str = ""
    store: str = ""
    reference: str = ""

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            moment = getattr(self, name)
            if moment is not None and not time_in_range(moment):
                raise ValueError(f"{name} must fall in the years {MIN_YEAR} to {MAX_YEAR}.")

    def events(self) -> QuerySet[AuditEvent]:
        return selectors.audit_event_list(
            since=self.since,
            until=self.until,
            actor=self.actor,
            action=self.action,
            store_code=self.store,
            reference=self.reference,
        )

    def as_details(self) -> dict[str, str]:
        """The filters in use, for the details of an audit event (times in UTC)."""
        values = {
            "since": self.since.astimezone(UTC).strftime(AT_FORMAT) if self.since else "",
            "until": self.until.astimezone(UTC).strftime(AT_FORMAT) if self.until else "",
            "actor": self.actor,
            "action": self.action,
            "store": self.store,
            "reference": self.reference,
        }
        return {name: value for name, value in values.items() if value}


def event_payload(row: dict[str, Any]) -> dict[str, Any]:
    """The canonical payload of an event (what its hash covers) plus the hash itself."""
    return {
        "seq": row["seq"],
        "at": row["at"].astimezone(UTC).strftime(AT_FORMAT),
        "actor_id": row["actor_id"],
        "actor_username": row["actor_username"],
        "action": row["action"],
        "registration_reference": row["registration_reference"],
        "store_code": row["store_code"],
        "ip": row["ip"],
        "user_agent": row["user_agent"],
        "reason": row["reason"],
        "fields": row["fields"],
        "details": row["details"],
        "prev_hash": row["prev_hash"],
        "hash": row["hash"],
    }


def csv_cells(payload: dict[str, Any]) -> list[str]:
    cells = []
    for name in COLUMNS:
        value = payload[name]
        if name in ("fields", "details"):
            text = _json(value)
        elif value is None:
            text = ""
        else:
            text = str(value)
        cells.append(protect_cell(text))
    return cells


class AuditExport:
    """One export: its filters and format, and, once streamed, how many rows it held."""

    def __init__(self, *, filters: AuditFilters, fmt: str) -> None:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Unknown export format {fmt!r}.")
        self.filters = filters
        self.format = fmt
        self.rows = 0
        self.up_to_seq: int | None = None
        self.started_seq: int | None = None
        self.started_at = timezone.now()

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    @property
    def filename(self) -> str:
        stamp = timezone.localtime(self.started_at).strftime("%Y%m%d-%H%M%S")
        return f"simreg-audit-{stamp}.{self.format}"

    def fix_extent(self) -> int:
        """The last event the export covers: the newest one now (only the first call reads it).

        Events appended later (the export's own `exported` events among them) stay out: an
        export covers the log as it stood when the export began.
        """
        if self.up_to_seq is None:
            self.up_to_seq = (
                AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
            )
        return self.up_to_seq

    def chunks(self) -> Iterator[bytes]:
        """The file, in chunks of about BYTES_PER_CHUNK bytes; nothing runs until iterated."""
        rows = (
            self.filters.events()
            .filter(seq__lte=self.fix_extent())
            .order_by("seq")
            .values(*PAYLOAD_KEYS, "hash")
            .iterator(chunk_size=ROWS_PER_QUERY)
        )
        buffer = io.StringIO()
        writer = csv.writer(buffer) if self.format == CSV else None
        if writer is not None:
            buffer.write(UTF8_BOM)
            writer.writerow(COLUMNS)
        for row in rows:
            payload = event_payload(row)
            if writer is not None:
                writer.writerow(csv_cells(payload))
            else:
                buffer.write(_json(payload))
                buffer.write("\n")
            self.rows += 1
            if buffer.tell() >= BYTES_PER_CHUNK:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()

    def details(self, *, state: str) -> dict[str, Any]:
        """What the export's `exported` event holds in `state` (STARTED, FINISHED, INTERRUPTED)."""
        details: dict[str, Any] = {
            "state": state,
            "format": self.format,
            "filters": self.filters.as_details(),
            "up_to_seq": self.up_to_seq,
        }
        if state != STARTED:
            details.update(rows=self.rows, complete=state == FINISHED, started_seq=self.started_seq)
        return details


def audit_export_started(
    *, export: AuditExport, actor: User | None, origin: Origin = COMMAND_LINE
) -> AuditEvent:
    """Record that an export begins, before any of it is written: its format, filters and
    the last event it covers. The event is committed at once (audit_record is atomic, and
    neither views nor commands run inside a transaction), so it stays if the export dies."""
    export.fix_extent()
    event = audit_record(
        actor=actor,
        action=AuditEvent.Action.EXPORTED,
        origin=origin,
        details=export.details(state=STARTED),
    )
    export.started_seq = event.seq
    return event


def audit_export_ended(
    *, export: AuditExport, actor: User | None, origin: Origin = COMMAND_LINE, complete: bool
) -> AuditEvent:
    """Record how an export ended: finished or interrupted, and the number of rows it held."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.EXPORTED,
        origin=origin,
        details=export.details(state=FINISHED if complete else INTERRUPTED),
    )


def audit_export_stream(
    *, export: AuditExport, actor: User | None, origin: Origin
) -> Iterator[bytes]:
    """Record the start of the export now, and return its chunks, which record its end.

    A streamed response is sent after the view has returned, so only the end of the stream
    knows how many rows left. A download broken off half-way (the server closes the
    generator) is recorded as interrupted, with the rows sent so far. A worker killed outright
    records no end: its "started" event, written before the first byte, is the trace it leaves.
    """
    audit_export_started(export=export, actor=actor, origin=origin)
    return _chunks_then_end(export=export, actor=actor, origin=origin)


def _chunks_then_end(*, export: AuditExport, actor: User | None, origin: Origin) -> Iterator[bytes]:
    complete = False
    try:
        yield from export.chunks()
        complete = True
    finally:
        audit_export_ended(export=export, actor=actor, origin=origin, complete=complete)


# Checking the database's chain, and anchors ----------------------------------------------------

ANCHOR_PATTERN = re.compile(
    r"(?:HEAD\s+)?(?:"
    r"\#?(?P<seq>\d+):(?P<hash>[0-9a-f]{64})"  # SEQ:HASH
    r"|seq=(?P<seq2>\d+)\s+hash=(?P<hash2>[0-9a-f]{64})"  # as verify_audit prints the head
    r")",
    re.ASCII | re.IGNORECASE,
)


@dataclass(frozen=True)
class Anchor:
    """An event number and the hash it had, recorded outside simreg after a check."""

    seq: int
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """`SEQ:HASH`; the `HEAD seq=SEQ hash=HASH` line that verify_audit prints works too."""
        match = ANCHOR_PATTERN.fullmatch(text.strip())
        if match is None:
            raise ValueError(f"not an anchor (SEQ:HASH): {text!r}")
        seq = event_number(match["seq"] or match["seq2"])
        if seq is None:
            raise ValueError(f"not an event number: {text!r}")
        return cls(seq=seq, hash=(match["hash"] or match["hash2"]).lower())

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"


@dataclass(frozen=True)
class AnchorCheck:
    """An anchor and the hash its event has now (None: the event no longer exists)."""

    anchor: Anchor
    found_hash: str | None

    @property
    def matches(self) -> bool:
        return self.found_hash == self.anchor.hash


@dataclass(frozen=True)
class AuditCheck:
    """The chain's report, its head when intact, and how each anchor compared."""

    chain: ChainReport
    head: Anchor | None = None
    anchors: tuple[AnchorCheck, ...] = ()

    @property
    def ok(self) -> bool:
        return self.chain.ok and all(check.matches for check in self.anchors)

    @property
    def mismatched(self) -> list[AnchorCheck]:
        return [check for check in self.anchors if not check.matches]

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "ok": self.ok,
            "checked": self.chain.checked,
            "broken_seq": self.chain.broken_seq,
            "head_seq": self.head.seq if self.head else None,
            "head_hash": self.head.hash if self.head else None,
        }
        if self.anchors:
            details["anchors"] = [
                {"seq": check.anchor.seq, "hash": check.anchor.hash, "matches": check.matches}
                for check in self.anchors
            ]
        return details


def _chain_and_head() -> tuple[ChainReport, Anchor | None]:
    """Verify the whole chain; when intact, its head is the last event verified."""
    last: list[AuditEvent] = []

    def events() -> Iterator[AuditEvent]:
        for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=5000):
            last[:] = [event]
            yield event

    report = audit_chain_verify(events=events())
    head = Anchor(seq=last[0].seq, hash=last[0].hash) if report.ok and last else None
    return report, head


def audit_chain_check(
    *, actor: User | None, origin: Origin = COMMAND_LINE, anchors: Sequence[Anchor] = ()
) -> AuditCheck:
    """Verify the whole chain and each anchor, and record that it was verified, with the
    outcome. Anchors are compared before the check's own event is appended."""
    report, head = _chain_and_head()
    found = dict(
        AuditEvent.objects.filter(seq__in=[anchor.seq for anchor in anchors]).values_list(
            "seq", "hash"
        )
    )
    check = AuditCheck(
        chain=report,
        head=head,
        anchors=tuple(AnchorCheck(anchor, found.get(anchor.seq)) for anchor in anchors),
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.VERIFIED,
        origin=origin,
        details=check.details(),
    )
    return check


# Verifying an exported file, without the database ----------------------------------------------


@dataclass
class ExportReport:
    """What `verify_export` found. `complete` means the file is the whole chain from event #1."""

    ok: bool = True
    checked: int = 0
    links_checked: int = 0
    broken_seq: int | None = None
    problem: str = ""
    first_seq: int | None = None
    last_seq: int | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.ok and self.first_seq in (1, None) and not self.gaps

    def broken(self, seq: int | None, problem: str) -> ExportReport:
        self.ok, self.broken_seq, self.problem = False, seq, problem
        return self


class MalformedExport(ValueError):
    pass


def _payloads_from_jsonl(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        line = line.strip().lstrip(UTF8_BOM) if number == 1 else line.strip()
        if not line:
            continue
        try:
            payload = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedExport(f"line {number} is not JSON") from exc
        if not isinstance(payload, dict) or set(payload) != set(COLUMNS):
            raise MalformedExport(f"line {number} does not hold exactly the exported keys")
        yield number, payload


def _payloads_from_csv(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(lines)
    header = next(reader, None)
    if header is not None and header[:1] and header[0].startswith(UTF8_BOM):
        header[0] = header[0][len(UTF8_BOM) :]
    if header is None or tuple(header) != COLUMNS:
        raise MalformedExport("the first row is not the header " + ",".join(COLUMNS))
    for cells in reader:
        number = reader.line_num
        if not cells:
            continue
        if len(cells) != len(COLUMNS):
            raise MalformedExport(f"row ending on line {number} has {len(cells)} cells")
        values = dict(zip(COLUMNS, (unprotect_cell(cell) for cell in cells), strict=True))
        try:
            payload = {
                **values,
                "seq": int(values["seq"]),
                "actor_id": int(values["actor_id"]) if values["actor_id"] else None,
                "ip": values["ip"] or None,
                "fields": json.loads(values["fields"]),
                "details": json.loads(values["details"]),
            }
        except (ValueError, json.JSONDecodeError) as exc:
            raise MalformedExport(f"row ending on line {number} has a malformed cell") from exc
        yield number, payload


def exported_hash(payload: dict[str, Any]) -> str:
    """SHA-256 of the canonical form of an exported event (every key but "hash")."""
    values = {name: payload[name] for name in PAYLOAD_KEYS}
    values["at"] = datetime.strptime(values["at"], AT_FORMAT).replace(tzinfo=UTC)
    return hashlib.sha256(canonical_form(**values)).hexdigest()


def verify_export(
    source: str | Path | Iterable[str], fmt: str, *, require_complete: bool = False
) -> ExportReport:
    """Check an exported file on its own: every event's hash, and every link it can see.

    A filtered export is a sub-sequence of the chain, so `prev_hash` is checked only between
    events with consecutive numbers (and against the genesis hash for event #1); each event's
    own hash is always checked. With `require_complete`, the file must be the chain from event
    #1 without a gap (an unfiltered export), so that a deleted line is caught as well.
    `source` is a path or an open text file (or any iterable of its lines).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}.")
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8-sig", newline="") as file:
            return verify_export(file, fmt, require_complete=require_complete)
    report = ExportReport()
    reader = _payloads_from_csv if fmt == CSV else _payloads_from_jsonl
    previous: dict[str, Any] | None = None
    try:
        for _, payload in reader(source):
            seq = payload["seq"]
            if not isinstance(seq, int) or isinstance(seq, bool):
                raise MalformedExport(f"an event number is not an integer: {seq!r}")
            if previous is not None and seq <= previous["seq"]:
                return report.broken(
                    seq,
                    f"event #{seq} comes after event #{previous['seq']}: the file repeats "
                    "or reorders events",
                )
            try:
                recomputed = exported_hash(payload)
            except (TypeError, ValueError) as exc:
                raise MalformedExport(f"event #{seq} has a malformed value") from exc
            if recomputed != payload["hash"]:
                return report.broken(
                    seq, f"event #{seq} was changed: its hash does not match its content"
                )
            if seq == 1 and payload["prev_hash"] != GENESIS_HASH:
                return report.broken(seq, "event #1 does not link to the genesis hash")
            if previous is not None and seq == previous["seq"] + 1:
                report.links_checked += 1
                if payload["prev_hash"] != previous["hash"]:
                    return report.broken(
                        seq,
                        f"event #{seq} does not link to event #{previous['seq']} "
                        "(an event was inserted, deleted or reordered)",
                    )
            elif previous is not None:
                if require_complete:
                    return report.broken(
                        previous["seq"] + 1, f"event #{previous['seq'] + 1} is missing"
                    )
                report.gaps.append((previous["seq"], seq))
            elif require_complete and seq != 1:
                return report.broken(1, f"the file starts at event #{seq}, not at event #1")
            if report.first_seq is None:
                report.first_seq = seq
            report.last_seq = seq
            report.checked += 1
            previous = payload
    except MalformedExport as exc:
        return report.broken(None, f"the file is not a simreg audit export: {exc}")
    return report
