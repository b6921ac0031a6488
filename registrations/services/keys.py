"""Key rotation: re-encrypt every stored value and document under the first key, recompute the
blind index under a new index key, and check that the older keys are no longer needed.

Rotation works on the raw columns (ciphertext in, ciphertext out) rather than through the model
fields: nothing is decrypted into a model instance, no `save()` side effect runs (timestamps,
the blind index), and a value that does not decrypt stops the run instead of being written back.

A run is resumable: MultiFernet.rotate output decrypts with the first key, so a row whose
every value already does is skipped, and a run stopped half-way (or limited with
`limit_batches`) continues where it stopped when run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.fernet import InvalidToken
from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

from registrations import crypto, documents
from registrations.audit import COMMAND_LINE, audit_record
from registrations.checks import CANARY_DOCUMENT, index_bits_problem
from registrations.models import AuditEvent, DocumentCopy, KeyCanary, Person
from registrations.storage import StorageUnavailable

ROTATE = "rotate"
REINDEX = "reindex"
CHECK = "check"

# The states of a rotation's `keys_rotated` events, as an export's: one when it starts, one when
# it ends. A "started" event with no end means the run was killed.
STARTED = "started"
FINISHED = "finished"
INTERRUPTED = "interrupted"

Progress = Callable[[str, int, int], None]


class RotationError(RuntimeError):
    """A stored value or file does not decrypt with any configured key."""


@dataclass(frozen=True)
class EncryptedTable:
    """A table and the columns of it that hold Fernet tokens."""

    model: type[models.Model]
    columns: tuple[str, ...]

    @property
    def label(self) -> str:
        return self.model.__name__

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    @property
    def pk_column(self) -> str:
        return self.model._meta.pk.column


def encrypted_tables() -> list[EncryptedTable]:
    """Every table with encrypted columns: each field of an encrypted type, and the canary."""
    tables = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        columns = tuple(
            model_field.column
            for model_field in model._meta.concrete_fields
            if isinstance(model_field, crypto.EncryptedFieldMixin)
        )
        if columns:
            tables.append(EncryptedTable(model, columns))
    # Its token is a plain TextField holding ciphertext.
    tables.append(EncryptedTable(KeyCanary, ("token",)))
    return tables


@dataclass
class RotationReport:
    mode: str
    rows: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)
    documents: int = 0
    stale_documents: int = 0
    missing_documents: list[int] = field(default_factory=list)
    reindexed: int = 0
    finished: bool = True

    @property
    def old_keys_removable(self) -> bool:
        """Everything decrypts with the first key alone (missing files hold nothing to read)."""
        return self.finished and not any(self.stale.values()) and not self.stale_documents

    def details(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rows": self.rows,
            "stale": self.stale,
            "documents": self.documents,
            "stale_documents": self.stale_documents,
            "missing_documents": len(self.missing_documents),
            "reindexed": self.reindexed,
            "finished": self.finished,
        }


class _Budget:
    """How many more writing batches a run may do (None: no limit)."""

    def __init__(self, limit: int | None) -> None:
        self.remaining = limit

    @property
    def spent(self) -> bool:
        return self.remaining is not None and self.remaining <= 0

    def spend(self) -> None:
        if self.remaining is not None:
            self.remaining -= 1


def _is_current(token: str) -> bool:
    try:
        return crypto.decrypts_with_primary_key(token)
    except UnicodeEncodeError:
        return False


def _rotated(token: str, where: str) -> str:
    try:
        new = crypto.rotate_token(token)
    except (InvalidToken, UnicodeEncodeError) as exc:
        raise RotationError(
            f"{where} does not decrypt with any key of FIELD_ENCRYPTION_KEYS: restore the key "
            "it was written with, then run rotate_keys again."
        ) from exc
    if not _is_current(new):
        raise RotationError(f"{where} does not decrypt with the first key after rotation.")
    return new


def _rows_after(
    table: str,
    pk_column: str,
    columns: tuple[str, ...],
    *,
    after: Any,
    batch_size: int,
    lock: bool,
) -> list[tuple]:
    """The next batch of rows (pk, *columns) in primary-key order, raw from the database.

    With `lock`, the rows are locked (PostgreSQL) so that the application cannot change one
    between this read and the update; a SQLite transaction already holds the write lock.
    """
    qn = connection.ops.quote_name
    selected = ", ".join(qn(name) for name in (pk_column, *columns))
    for_update = " FOR UPDATE" if lock and connection.features.has_select_for_update else ""
    where, params = "", []
    if after is not None:
        where, params = f" WHERE {qn(pk_column)} > %s", [after]
    sql = (
        f"SELECT {selected} FROM {qn(table)}{where} "  # noqa: S608 (quoted model metadata)
        f"ORDER BY {qn(pk_column)} LIMIT %s{for_update}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, batch_size])
        return cursor.fetchall()


def _count(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")  # noqa: S608
        return cursor.fetchone()[0]


def _rotated_row(spec: EncryptedTable, pk: Any, values: list[str | None]) -> list | None:
    """The row's values re-encrypted under the first key, or None when none needs it."""
    current = [value is None or _is_current(value) for value in values]
    if all(current):
        return None
    return [
        value if is_current else _rotated(value, f"{spec.label} #{pk} {column}")
        for column, value, is_current in zip(spec.columns, values, current, strict=True)
    ]


def rotate_table(
    spec: EncryptedTable,
    *,
    batch_size: int,
    budget: _Budget,
    progress: Progress,
    report: RotationReport,
) -> None:
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(column)} = %s" for column in spec.columns)
    update = f"UPDATE {qn(spec.table)} SET {assignments} WHERE {qn(spec.pk_column)} = %s"  # noqa: S608
    total, seen = _count(spec.table), 0
    report.rows.setdefault(spec.label, 0)
    if not total:
        progress(spec.label, 0, 0)
    last = None
    while True:
        with transaction.atomic():
            rows = _rows_after(
                spec.table,
                spec.pk_column,
                spec.columns,
                after=last,
                batch_size=batch_size,
                lock=True,
            )
            if rows and budget.spent:
                report.finished = False
                return
            changes = []
            for pk, *values in rows:
                new_values = _rotated_row(spec, pk, values)
                if new_values is not None:
                    changes.append([*new_values, pk])
            if changes:
                with connection.cursor() as cursor:
                    cursor.executemany(update, changes)
        if not rows:
            return
        if changes:
            report.rows[spec.label] += len(changes)
            budget.spend()
        seen += len(rows)
        last = rows[-1][0]
        progress(spec.label, seen, total)
        if len(rows) < batch_size:
            return


def check_table(
    spec: EncryptedTable, *, batch_size: int, progress: Progress, report: RotationReport
) -> None:
    total, seen, last = _count(spec.table), 0, None
    report.stale.setdefault(spec.label, 0)
    if not total:
        progress(spec.label, 0, 0)
    while True:
        rows = _rows_after(
            spec.table, spec.pk_column, spec.columns, after=last, batch_size=batch_size, lock=False
        )
        if not rows:
            return
        for _pk, *values in rows:
            if not all(value is None or _is_current(value) for value in values):
                report.stale[spec.label] += 1
        seen += len(rows)
        last = rows[-1][0]
        progress(spec.label, seen, total)
        if len(rows) < batch_size:
            return


def _document_batches(batch_size: int):
    on_file = DocumentCopy.objects.filter(purged_at__isnull=True).order_by("pk")
    last = 0
    while True:
        batch = list(on_file.filter(pk__gt=last).values_list("pk", "stored_name")[:batch_size])
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def _document_token(stored_name: str) -> str | None:
    """The stored ciphertext of a copy, or None when its file is gone. Through the private
    storage (a folder or a bucket): a storage that cannot be reached stops the run."""
    try:
        return documents.read_token(stored_name).decode("ascii")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        return ""  # not a token: reported as not decrypting
    except StorageUnavailable as exc:
        raise _storage_stopped(exc) from exc


def _storage_stopped(exc: StorageUnavailable) -> RotationError:
    return RotationError(
        f"The private storage cannot be used now: {exc} Run rotate_keys again once the storage "
        "answers: it continues where it stopped."
    )


def rotate_documents(
    *, batch_size: int, budget: _Budget, progress: Progress, report: RotationReport
) -> None:
    total, seen = DocumentCopy.objects.filter(purged_at__isnull=True).count(), 0
    if not total:
        progress("DocumentCopy files", 0, 0)
    for batch in _document_batches(batch_size):
        if budget.spent:
            report.finished = False
            return
        rewritten = 0
        for pk, stored_name in batch:
            token = _document_token(stored_name)
            if token is None:
                report.missing_documents.append(pk)
                continue
            if _is_current(token):
                continue
            # The storage replaces a file whole (a rename into place, or one PUT of an object).
            new = _rotated(token, f"DocumentCopy #{pk} file").encode("ascii")
            try:
                documents.replace_token(stored_name, new)
            except StorageUnavailable as exc:
                raise _storage_stopped(exc) from exc
            rewritten += 1
        seen += len(batch)
        progress("DocumentCopy files", seen, total)
        if rewritten:
            report.documents += rewritten
            budget.spend()


def check_documents(*, batch_size: int, progress: Progress, report: RotationReport) -> None:
    total, seen = DocumentCopy.objects.filter(purged_at__isnull=True).count(), 0
    if not total:
        progress("DocumentCopy files", 0, 0)
    for batch in _document_batches(batch_size):
        for pk, stored_name in batch:
            token = _document_token(stored_name)
            if token is None:
                report.missing_documents.append(pk)
            elif not _is_current(token):
                report.stale_documents += 1
        seen += len(batch)
        progress("DocumentCopy files", seen, total)


def reindex_people(
    *, batch_size: int, budget: _Budget, progress: Progress, report: RotationReport
) -> None:
    """Recompute Person.document_index with the BLIND_INDEX_KEY and BLIND_INDEX_BITS in force
    (as Person.save does), then record both in the canary."""
    qn = connection.ops.quote_name
    meta = Person._meta
    pk_column = meta.pk.column
    type_column = meta.get_field("document_type").column
    number_column = meta.get_field("document_number").column
    index_column = meta.get_field("document_index").column
    update = (
        f"UPDATE {qn(meta.db_table)} SET {qn(index_column)} = %s "  # noqa: S608
        f"WHERE {qn(pk_column)} = %s"
    )
    total, seen, last = _count(meta.db_table), 0, None
    if not total:
        progress("Person blind index", 0, 0)
    columns = (type_column, number_column, index_column)
    while True:
        with transaction.atomic():
            rows = _rows_after(
                meta.db_table, pk_column, columns, after=last, batch_size=batch_size, lock=True
            )
            if rows and budget.spent:
                report.finished = False
                return
            changes = []
            for pk, document_type, token, stored_index in rows:
                number = (
                    crypto.decrypt_text(token, where=f"Person #{pk} document_number")
                    if token is not None
                    else ""
                )
                index = crypto.blind_index(document_type, number) if number else ""
                if index != stored_index:
                    changes.append([index, pk])
            if changes:
                with connection.cursor() as cursor:
                    cursor.executemany(update, changes)
        if not rows:
            break
        if changes:
            report.reindexed += len(changes)
            budget.spend()
        seen += len(rows)
        last = rows[-1][0]
        progress("Person blind index", seen, total)
        if len(rows) < batch_size:
            break
    # Last: the start-up check keeps refusing the new index key (or width) until every index
    # is done.
    KeyCanary.objects.update(
        index=crypto.blind_index(*CANARY_DOCUMENT, bits=64),
        index_bits=settings.BLIND_INDEX_BITS,
    )


def _no_progress(label: str, done: int, total: int) -> None:
    pass


def keys_rotate(
    *,
    batch_size: int = 500,
    limit_batches: int | None = None,
    reindex: bool = False,
    progress: Progress = _no_progress,
) -> RotationReport:
    """Re-encrypt every encrypted column and document under the first key; with `reindex`,
    recompute the blind indexes too. Stops after `limit_batches` writing batches if given."""
    if reindex and (problem := index_bits_problem()):
        # Indexes of that width would not fit, or would match too many people.
        raise RotationError(problem)
    report = RotationReport(mode=REINDEX if reindex else ROTATE)
    budget = _Budget(limit_batches)
    tables = [spec for spec in encrypted_tables() if spec.model is not KeyCanary]
    canary = EncryptedTable(KeyCanary, ("token",))
    # Committed before the first batch (audit_record is atomic; commands run outside any
    # transaction): a run killed outright still leaves this trace.
    started = audit_record(
        actor=None,
        action=AuditEvent.Action.KEYS_ROTATED,
        origin=COMMAND_LINE,
        details={"state": STARTED, "mode": report.mode, "batch_size": batch_size},
    )
    state = INTERRUPTED
    try:
        for spec in tables:
            rotate_table(
                spec, batch_size=batch_size, budget=budget, progress=progress, report=report
            )
            if not report.finished:
                return report
        rotate_documents(batch_size=batch_size, budget=budget, progress=progress, report=report)
        if not report.finished:
            return report
        # The canary last of all: it decrypts with the first key alone only once everything
        # else does, so the start-up check refuses to run without the old keys until then.
        rotate_table(canary, batch_size=batch_size, budget=budget, progress=progress, report=report)
        if report.finished and reindex:
            reindex_people(batch_size=batch_size, budget=budget, progress=progress, report=report)
        state = FINISHED
    except BaseException:
        report.finished = False
        raise
    finally:
        # Batches already done stay done: the event says how far this run got. "finished" in
        # the details says whether everything is under the first key; a run stopped by
        # `limit_batches` ends "finished" without it.
        audit_record(
            actor=None,
            action=AuditEvent.Action.KEYS_ROTATED,
            origin=COMMAND_LINE,
            details={**report.details(), "state": state, "started_id": started.pk},
        )
    return report


def keys_check(*, batch_size: int = 500, progress: Progress = _no_progress) -> RotationReport:
    """Whether every stored value and document decrypts with the first key alone."""
    report = RotationReport(mode=CHECK)
    for spec in encrypted_tables():
        check_table(spec, batch_size=batch_size, progress=progress, report=report)
    check_documents(batch_size=batch_size, progress=progress, report=report)
    audit_record(
        actor=None,
        action=AuditEvent.Action.KEYS_ROTATED,
        origin=COMMAND_LINE,
        details=report.details(),
    )
    return report
