"""Exports of the audit log (CSV, JSON Lines), and checking an exported file on its own.

An export is streamed: rows come from the database in chunks and leave as encoded lines, so
memory stays flat whatever the number of events. Every exported event carries its chain, its
position, `prev_hash` and `hash`, and its other columns are exactly the content its hash covers
(registrations.audit.chain), so the file alone is enough to check it.

A JSON Lines export begins with the signed checkpoints that the log held when the export began
(one `{"checkpoint": {...}}` line each), then one event per line. With the audit public key,
`verify_export` checks each checkpoint's signature and Merkle root, and that each head it names
is in the file with that hash: an export verifies on its own, without the database. A CSV export
holds the events only (a spreadsheet reads one table): its hashes and links are checked the same
way, its checkpoints are not in it.

CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or a carriage
return) get a leading apostrophe, as OWASP advises; a cell that starts with an apostrophe gets
one too, so that removing exactly one leading apostrophe from every cell that has one gives the
original text back. `verify_export` does that before hashing.

An export is recorded twice: an `exported` event with state "started" before its first byte
leaves (so that even a worker killed half-way leaves a trace), and one with state "finished" or
"interrupted" and the number of rows once it ends.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from registrations import selectors
from registrations.audit.chain import (
    AT_FORMAT,
    COMMAND_LINE,
    CONTENT_KEYS,
    GENESIS_HASH,
    Origin,
    at_text,
    audit_record,
    canonical_json,
    content_digest,
    link_hash,
)
from registrations.audit.checkpoints import (
    checkpoints_in_order,
    merkle_root,
    signature_problem,
    signed_message,
)
from registrations.audit.reading import Row, export_json, filtered_rows
from registrations.models import AuditCheckpoint, AuditEvent, User

CSV = "csv"
JSONL = "jsonl"
EXPORT_FORMATS = (CSV, JSONL)
CONTENT_TYPES = {CSV: "text/csv; charset=utf-8", JSONL: "application/jsonl; charset=utf-8"}

# The exported columns: the event number, its place in its chain, its content, its links.
# They are the fields of reading.Row, in that order: id, chain, seq, the CONTENT_KEYS, prev_hash,
# hash (tests/test_audit_reading.py holds them to it).
COLUMNS = Row._fields
CHECKPOINT_KEYS = ("number", "at", "heads", "root", "prev_digest", "public_key", "signature")

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
# Excel reads a CSV file as UTF-8 (Chinese names of stores, reasons) only after this mark.
UTF8_BOM = "\ufeff"
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

    @property
    def any(self) -> bool:
        return any((self.since, self.until, self.actor, self.action, self.store, self.reference))

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
            "since": at_text(self.since) if self.since else "",
            "until": at_text(self.until) if self.until else "",
            "actor": self.actor,
            "action": self.action,
            "store": self.store,
            "reference": self.reference,
        }
        return {name: value for name, value in values.items() if value}


def checkpoint_payload(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    return {
        "number": checkpoint.number,
        "at": at_text(checkpoint.at),
        "heads": checkpoint.heads,
        "root": checkpoint.root,
        "prev_digest": checkpoint.prev_digest,
        "public_key": checkpoint.public_key,
        "signature": checkpoint.signature,
    }


def csv_cells(row: Row) -> list[str]:
    """A row's CSV cells, in COLUMNS order (the order of Row): JSON values as canonical JSON,
    null as an empty cell. Only text that a person or a client typed can start like a formula:
    numbers, times, addresses, hashes and JSON cannot, and stay as they are."""
    return [
        str(row.id),
        str(row.chain),
        str(row.seq),
        row.at,
        "" if row.actor_id is None else str(row.actor_id),
        protect_cell(row.actor_username),
        protect_cell(row.action),
        protect_cell(row.registration_reference),
        protect_cell(row.store_code),
        "" if row.ip is None else row.ip,
        protect_cell(row.user_agent),
        protect_cell(row.reason),
        row.fields,
        row.details,
        row.prev_hash,
        row.hash,
    ]


class AuditExport:
    """One export: its filters and format, and, once streamed, how many rows it held."""

    def __init__(self, *, filters: AuditFilters, fmt: str) -> None:
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"Unknown export format {fmt!r}.")
        self.filters = filters
        self.format = fmt
        self.rows = 0
        self.up_to_id: int | None = None
        self.up_to_checkpoint: int | None = None
        self.started_id: int | None = None
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
        export covers the log as it stood when the export began. The checkpoints are fixed
        first, so every head they name is an event the export covers.
        """
        if self.up_to_id is None:
            self.up_to_checkpoint = (
                AuditCheckpoint.objects.order_by("-number").values_list("number", flat=True).first()
                or 0
            )
            self.up_to_id = (
                AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
            )
        return self.up_to_id

    def _checkpoint_lines(self) -> Iterator[str]:
        for checkpoint in checkpoints_in_order(upto=self.up_to_checkpoint):
            yield canonical_json({"checkpoint": checkpoint_payload(checkpoint)}) + "\n"

    def chunks(self) -> Iterator[bytes]:
        """The file, in chunks of about BYTES_PER_CHUNK bytes; nothing runs until iterated."""
        rows = filtered_rows(self.filters.events(), upto=self.fix_extent())
        buffer = io.StringIO()
        writer = csv.writer(buffer) if self.format == CSV else None
        if writer is not None:
            buffer.write(UTF8_BOM)
            writer.writerow(COLUMNS)
        else:
            for line in self._checkpoint_lines():
                buffer.write(line)
        for row in rows:
            if writer is not None:
                writer.writerow(csv_cells(row))
            else:
                buffer.write(export_json(row))
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
            "up_to_id": self.up_to_id,
            "up_to_checkpoint": self.up_to_checkpoint,
        }
        if state != STARTED:
            details.update(rows=self.rows, complete=state == FINISHED, started_id=self.started_id)
        return details


def audit_export_started(
    *, export: AuditExport, actor: User | None, origin: Origin = COMMAND_LINE
) -> AuditEvent:
    """Record that an export begins, before any of it is written: its format, filters and
    the last event it covers. The event is committed at once (neither views nor commands run
    inside a transaction), so it stays if the export dies."""
    export.fix_extent()
    event = audit_record(
        actor=actor,
        action=AuditEvent.Action.EXPORTED,
        origin=origin,
        details=export.details(state=STARTED),
    )
    export.started_id = event.id
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


# Verifying an exported file, without the database ----------------------------------------------


@dataclass
class ExportReport:
    """What `verify_export` found. `complete` means every chain in the file starts at its
    first event and has no gap."""

    ok: bool = True
    checked: int = 0
    links_checked: int = 0
    chains: int = 0
    checkpoints: int = 0
    signatures_checked: int = 0
    heads_checked: int = 0
    broken_seq: int | None = None
    problem: str = ""
    first_id: int | None = None
    last_id: int | None = None
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    starts_late: list[int] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.ok and not self.gaps and not self.starts_late

    def broken(self, seq: int | None, problem: str) -> ExportReport:
        self.ok, self.broken_seq, self.problem = False, seq, problem
        return self


class MalformedExport(ValueError):
    pass


def _records_from_jsonl(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(lines, start=1):
        line = line.strip().lstrip(UTF8_BOM) if number == 1 else line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MalformedExport(f"line {number} is not JSON") from exc
        if isinstance(record, dict) and set(record) == {"checkpoint"}:
            checkpoint = record["checkpoint"]
            if not isinstance(checkpoint, dict) or set(checkpoint) != set(CHECKPOINT_KEYS):
                raise MalformedExport(f"line {number} is not a whole checkpoint")
            yield "checkpoint", checkpoint
            continue
        if not isinstance(record, dict) or set(record) != set(COLUMNS):
            raise MalformedExport(f"line {number} does not hold exactly the exported keys")
        yield "event", record


def _records_from_csv(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
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
                "id": int(values["id"]),
                "chain": int(values["chain"]),
                "seq": int(values["seq"]),
                "actor_id": int(values["actor_id"]) if values["actor_id"] else None,
                "ip": values["ip"] or None,
                "fields": json.loads(values["fields"]),
                "details": json.loads(values["details"]),
            }
        except (ValueError, json.JSONDecodeError) as exc:
            raise MalformedExport(f"row ending on line {number} has a malformed cell") from exc
        yield "event", payload


def exported_hash(payload: dict[str, Any]) -> str:
    """The hash an exported event must have, recomputed from its columns."""
    datetime.strptime(payload["at"], AT_FORMAT).replace(tzinfo=UTC)  # a real time, or ValueError
    content = content_digest({name: payload[name] for name in CONTENT_KEYS})
    return link_hash(
        chain=payload["chain"], seq=payload["seq"], prev_hash=payload["prev_hash"], content=content
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_checkpoint(
    checkpoint: dict[str, Any],
    *,
    previous: dict[str, Any] | None,
    public_keys: set[str] | None,
    report: ExportReport,
) -> str:
    """The problem with one exported checkpoint, or ''."""
    heads = checkpoint["heads"]
    if not isinstance(heads, list) or not all(
        isinstance(head, list) and len(head) == 3 for head in heads
    ):
        return "its heads are malformed"
    if merkle_root(heads) != checkpoint["root"]:
        return "its heads do not give its Merkle root"
    message = signed_message(
        number=checkpoint["number"],
        at=checkpoint["at"],
        root=checkpoint["root"],
        prev_digest=checkpoint["prev_digest"],
    )
    if previous is not None and checkpoint["number"] == previous["number"] + 1:
        previous_message = signed_message(
            number=previous["number"],
            at=previous["at"],
            root=previous["root"],
            prev_digest=previous["prev_digest"],
        )
        if checkpoint["prev_digest"] != hashlib.sha256(previous_message).hexdigest():
            return "does not follow the checkpoint before it"
    elif previous is not None:
        return f"follows checkpoint {previous['number']}: a checkpoint is missing"
    elif checkpoint["number"] != 1:
        # An export carries every checkpoint from the first: one missing here was removed.
        return "is the first in the file: a checkpoint before it is missing"
    elif checkpoint["prev_digest"] != GENESIS_HASH:
        return "is the first checkpoint but does not start from the genesis digest"
    if public_keys is not None:
        problem = signature_problem(
            public_key=checkpoint["public_key"],
            message=message,
            signature=checkpoint["signature"],
            trusted=public_keys,
        )
        if problem:
            return problem
        report.signatures_checked += 1
    return ""


def verify_export(
    source: str | Path | Iterable[str],
    fmt: str,
    *,
    require_complete: bool = False,
    public_keys: Iterable[str] | None = None,
) -> ExportReport:
    """Check an exported file on its own: every event's hash, every link it can see, and (in
    JSON Lines) every checkpoint's root and, given the public keys, signature.

    A filtered export holds parts of chains, so `prev_hash` is checked only between events
    with consecutive positions in a chain (and against the genesis hash for position 1); each
    event's own hash is always checked. Each checkpoint head whose position is in the file
    must be there with that hash. With `require_complete`, every chain must start at position 1
    without a gap and every checkpoint head must be in the file (an unfiltered export), so that
    a deleted line or a cut tail is caught as well. `source` is a path or an open text file (or
    any iterable of its lines).
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}.")
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8-sig", newline="") as file:
            return verify_export(
                file, fmt, require_complete=require_complete, public_keys=public_keys
            )
    keys = {key.lower() for key in public_keys} if public_keys is not None else None
    report = ExportReport()
    reader = _records_from_csv if fmt == CSV else _records_from_jsonl
    last: dict[int, tuple[int, str]] = {}
    watched: dict[tuple[int, int], tuple[str, int]] = {}
    previous_checkpoint: dict[str, Any] | None = None
    previous_id = 0
    try:
        for kind, record in reader(source):
            if kind == "checkpoint":
                if report.checked:
                    raise MalformedExport("a checkpoint comes after the events")
                if not _is_int(record["number"]):
                    raise MalformedExport("a checkpoint number is not an integer")
                problem = _check_checkpoint(
                    record, previous=previous_checkpoint, public_keys=keys, report=report
                )
                if problem:
                    return report.broken(None, f"checkpoint {record['number']} {problem}")
                for chain, seq, hash_ in record["heads"]:
                    watched[(chain, seq)] = (hash_, record["number"])
                report.checkpoints += 1
                previous_checkpoint = record
                continue
            event_id, chain, seq = record["id"], record["chain"], record["seq"]
            if not all(_is_int(value) for value in (event_id, chain, seq)):
                raise MalformedExport(f"event {event_id!r} has a number that is not an integer")
            if event_id <= previous_id:
                return report.broken(
                    seq,
                    f"event #{event_id} comes after event #{previous_id}: the file repeats "
                    "or reorders events",
                )
            try:
                recomputed = exported_hash(record)
            except (TypeError, ValueError) as exc:
                raise MalformedExport(f"event #{event_id} has a malformed value") from exc
            where = f"event #{event_id} (chain {chain} position {seq})"
            if recomputed != record["hash"]:
                return report.broken(seq, f"{where} was changed: its hash does not match")
            if seq == 1 and record["prev_hash"] != GENESIS_HASH:
                return report.broken(seq, f"{where} does not link to the genesis hash")
            before = last.get(chain)
            if before is not None and seq <= before[0]:
                return report.broken(seq, f"{where} repeats or reorders its chain")
            if before is not None and seq == before[0] + 1:
                report.links_checked += 1
                if record["prev_hash"] != before[1]:
                    return report.broken(
                        seq,
                        f"{where} does not link to the event before it in its chain "
                        "(an event was inserted, deleted or reordered)",
                    )
            elif before is not None:
                if require_complete:
                    return report.broken(
                        before[0] + 1, f"chain {chain} position {before[0] + 1} is missing"
                    )
                report.gaps.append((chain, before[0], seq))
            elif seq != 1:
                if require_complete:
                    return report.broken(
                        1, f"chain {chain} starts at position {seq}, not at position 1"
                    )
                report.starts_late.append(chain)
            expected = watched.pop((chain, seq), None)
            if expected is not None:
                report.heads_checked += 1
                if expected[0] != record["hash"]:
                    return report.broken(
                        seq,
                        f"{where} is not the one checkpoint {expected[1]} signed "
                        "(the chain was re-hashed)",
                    )
            if report.first_id is None:
                report.first_id = event_id
            report.last_id = event_id
            report.checked += 1
            last[chain] = (seq, record["hash"])
            previous_id = event_id
    except MalformedExport as exc:
        return report.broken(None, f"the file is not a simreg audit export: {exc}")
    except (KeyError, TypeError) as exc:
        return report.broken(None, f"the file is not a simreg audit export: {exc!r}")
    report.chains = len(last)
    if require_complete and watched:
        (chain, seq), (_, number) = min(watched.items())
        return report.broken(
            seq,
            f"checkpoint {number} names chain {chain} position {seq}, which is not in the file "
            "(the log was cut)",
        )
    return report
