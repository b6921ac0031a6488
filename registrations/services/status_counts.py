"""The counts of registrations per store and status (StoreStatusCount), kept exact.

Every service that creates, deletes or moves a registration between statuses calls
`registration_status_count_move` in its own transaction, late: after it holds the
registration's row lock and just before its audit event. The counter rows are locked in
(store, status) order, so two transactions moving records of the same store queue behind one
another instead of deadlocking.
"""

from __future__ import annotations

from django.db import connection, transaction
from django.db.models import Count, F

from registrations.models import Registration, StatusChange, Store, StoreStatusCount, User


def registration_status_moved(
    *, registration: Registration, old: str, new: str, actor: User, at
) -> None:
    """A registration already updated from `old` to `new` by a service: its history line and
    the store's counts (for moves that carry no reason or comment)."""
    StatusChange.objects.create(
        registration=registration, from_status=old, to_status=new, actor=actor, at=at
    )
    registration_status_count_move(store=registration.store_id, old=old, new=new)


def registration_status_count_move(
    *, store: Store | int, old: str | None = None, new: str | None = None
) -> None:
    """One registration of `store` leaves status `old` (None: it is created) and enters `new`
    (None: it is deleted)."""
    if old == new:
        return
    store_id = store if isinstance(store, int) else store.pk
    moves = sorted((status, step) for status, step in ((old, -1), (new, 1)) if status)
    for status, step in moves:
        updated = StoreStatusCount.objects.filter(store_id=store_id, status=status).update(
            count=F("count") + step
        )
        if not updated:
            _upsert(store_id=store_id, status=status, step=step)


def _upsert(*, store_id: int, status: str, step: int) -> None:
    """The first registration of a store in a status: insert its row, or add to the row a
    concurrent transaction inserted first (the unique (store, status) decides)."""
    table = connection.ops.quote_name(StoreStatusCount._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (store_id, status, count) VALUES (%s, %s, %s) "  # noqa: S608
            f"ON CONFLICT (store_id, status) DO UPDATE SET count = {table}.count + excluded.count",
            [store_id, status, step],
        )


@transaction.atomic
def store_status_counts_rebuild() -> int:
    """Recount every store's registrations per status from the rows (after a bulk load, or to
    repair); returns how many counter rows there are now."""
    rows = Registration.objects.values_list("store_id", "status").annotate(n=Count("*")).order_by()
    StoreStatusCount.objects.all().delete()
    created = StoreStatusCount.objects.bulk_create(
        (StoreStatusCount(store_id=store, status=status, count=n) for store, status, n in rows),
        batch_size=1000,
    )
    return len(created)
