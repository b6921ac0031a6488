"""Seeding the audit log fast, for the benchmarks: synthetic events spread over the stores'
chains exactly as `audit_record` spreads them, hashed the same way, written in large batches.

The result is a log that `verify_audit` finds intact: each event continues its chain from the
chain's current head, the head rows are moved on at the end, and a checkpoint signs them.
Only for a benchmark database: the head table is locked for the whole seed, so an append made
meanwhile waits instead of breaking a chain.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from registrations.audit import EVENT_COLUMNS, GENESIS_HASH, checkpoint_seal, event_hash
from registrations.audit.chain import chain_for
from registrations.models import AuditChain, AuditEvent, User

BATCH = 10_000
PROGRESS_EVERY = 100_000
# Every column but the event number, which the database gives.
COPY_COLUMNS = EVENT_COLUMNS[1:]


def seed_audit_events(
    *,
    count: int,
    store_codes: Sequence[str],
    actor: User | None,
    reference_for: Callable[[int], str],
    action: str = AuditEvent.Action.VIEWED,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Append `count` events (one a second up to now), the n-th (from 0) in the store
    `store_codes[n % len(store_codes)]` about the record `reference_for(n)`; then seal a
    checkpoint. Returns the number of events written."""
    if count <= 0:
        return 0
    progress = progress or _print_now
    if not store_codes:
        raise ValueError("Give at least one store code: events are spread over its chains.")
    chains = {
        code: chain_for(store_code=code, actor_id=None, chains=settings.AUDIT_CHAINS)
        for code in store_codes
    }
    write = _copy_rows if connection.vendor == "postgresql" else _bulk_create
    username = actor.get_username() if actor is not None else ""
    start = timezone.now() - timedelta(seconds=count)
    t0 = time.perf_counter()
    with transaction.atomic():
        _lock_heads()
        # chain -> (seq, hash, prev_hash) of its newest event
        heads = {
            chain: (seq, hash_, prev_hash)
            for chain, seq, hash_, prev_hash in AuditChain.objects.values_list(
                "chain", "seq", "hash", "prev_hash"
            )
        }
        moved: set[int] = set()
        for first in range(0, count, BATCH):
            batch = []
            for n in range(first, min(first + BATCH, count)):
                code = store_codes[n % len(store_codes)]
                chain = chains[code]
                seq, prev_hash, _ = heads.get(chain, (0, GENESIS_HASH, ""))
                event = AuditEvent(
                    at=start + timedelta(seconds=n),
                    actor=actor,
                    actor_username=username,
                    action=action,
                    registration_reference=reference_for(n),
                    store_code=code,
                    ip="10.0.0.1",
                    user_agent="bench",
                    reason="",
                    fields=[],
                    details={},
                )
                event.chain, event.seq, event.prev_hash = chain, seq + 1, prev_hash
                event.hash = event_hash(event)
                heads[chain] = (event.seq, event.hash, prev_hash)
                moved.add(chain)
                batch.append(event)
            write(batch)
            done = first + len(batch)
            if done % PROGRESS_EVERY < BATCH or done == count:
                progress(f"  audit events: {done:>11,} ({time.perf_counter() - t0:.0f} s)")
        AuditChain.objects.bulk_create(
            [
                AuditChain(chain=chain, seq=seq, hash=hash_, prev_hash=prev_hash)
                for chain, (seq, hash_, prev_hash) in sorted(heads.items())
                if chain in moved
            ],
            update_conflicts=True,
            unique_fields=["chain"],
            update_fields=["seq", "prev_hash", "hash"],
        )
    checkpoint_seal()
    return count


def _print_now(line: str) -> None:
    print(line, flush=True)


def _lock_heads() -> None:
    """Keep appends out until the seed commits (SQLite: the transaction already holds the
    database's write lock, as every transaction begins IMMEDIATE)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {AuditChain._meta.db_table} IN EXCLUSIVE MODE")


def _copy_rows(events: list[AuditEvent]) -> None:
    """PostgreSQL: COPY, several times faster than INSERT for large batches."""
    sql = f"COPY {AuditEvent._meta.db_table} ({', '.join(COPY_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(sql) as copy:
        for event in events:
            copy.write_row(
                (
                    event.chain,
                    event.seq,
                    event.at,
                    event.actor_id,
                    event.actor_username,
                    event.action,
                    event.registration_reference,
                    event.store_code,
                    event.ip,
                    event.user_agent,
                    event.reason,
                    json.dumps(event.fields),
                    json.dumps(event.details),
                    event.prev_hash,
                    event.hash,
                )
            )


def _bulk_create(events: list[AuditEvent]) -> None:
    AuditEvent.objects.bulk_create(events, batch_size=1000)
