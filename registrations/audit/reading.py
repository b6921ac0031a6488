"""Reading events fast, for verification and export: a million events in seconds, memory flat.

Rows are read a page at a time by key on an index (never one long server-side cursor: outside a
transaction PostgreSQL would first write the whole result to a temporary file). On PostgreSQL
the time comes back as text already in the canonical form, and `fields` and `details` as their
stored JSON text, which is turned into canonical JSON once per distinct text (they repeat a
lot) instead of once per event. The canonical content (chain.content_digest) is then written by
joining strings, byte for byte what `json.dumps(content, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` gives; tests/test_audit_reading.py checks that on awkward values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from json.encoder import encode_basestring
from typing import NamedTuple

from django.db import connection

from registrations.audit.chain import at_text, canonical_json
from registrations.models import AuditEvent

ROWS_PER_QUERY = 5000


class Row(NamedTuple):
    """One event as read for checking: every value the hash covers, JSON values as canonical
    JSON text, the time in the canonical form."""

    id: int
    chain: int
    seq: int
    at: str
    actor_id: int | None
    actor_username: str
    action: str
    registration_reference: str
    store_code: str
    ip: str | None
    user_agent: str
    reason: str
    fields: str
    details: str
    prev_hash: str
    hash: str


@lru_cache(maxsize=4096)
def _canonical_from_text(text: str) -> str:
    return canonical_json(json.loads(text))


def _json_value(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def content_json(row: Row) -> str:
    """The canonical JSON of an event's content (the keys in sorted order)."""
    return (
        '{"action":'
        + encode_basestring(row.action)
        + ',"actor_id":'
        + ("null" if row.actor_id is None else str(row.actor_id))
        + ',"actor_username":'
        + encode_basestring(row.actor_username)
        + ',"at":'
        + encode_basestring(row.at)
        + ',"details":'
        + row.details
        + ',"fields":'
        + row.fields
        + ',"ip":'
        + _json_value(row.ip)
        + ',"reason":'
        + encode_basestring(row.reason)
        + ',"registration_reference":'
        + encode_basestring(row.registration_reference)
        + ',"store_code":'
        + encode_basestring(row.store_code)
        + ',"user_agent":'
        + encode_basestring(row.user_agent)
        + "}"
    )


def export_json(row: Row) -> str:
    """An exported JSON Lines event: the content, its place in its chain and its links, as
    canonical JSON (what `canonical_json` of the same dictionary gives)."""
    return (
        '{"action":'
        + encode_basestring(row.action)
        + ',"actor_id":'
        + ("null" if row.actor_id is None else str(row.actor_id))
        + ',"actor_username":'
        + encode_basestring(row.actor_username)
        + ',"at":'
        + encode_basestring(row.at)
        + ',"chain":'
        + str(row.chain)
        + ',"details":'
        + row.details
        + ',"fields":'
        + row.fields
        + ',"hash":'
        + encode_basestring(row.hash)
        + ',"id":'
        + str(row.id)
        + ',"ip":'
        + _json_value(row.ip)
        + ',"prev_hash":'
        + encode_basestring(row.prev_hash)
        + ',"reason":'
        + encode_basestring(row.reason)
        + ',"registration_reference":'
        + encode_basestring(row.registration_reference)
        + ',"seq":'
        + str(row.seq)
        + ',"store_code":'
        + encode_basestring(row.store_code)
        + ',"user_agent":'
        + encode_basestring(row.user_agent)
        + "}"
    )


POSTGRESQL_COLUMNS = """id, chain, seq,
    to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
    actor_id, actor_username, action, registration_reference, store_code, host(ip),
    user_agent, reason, fields::text, details::text, prev_hash, hash"""
ORM_COLUMNS = tuple(Row._fields)


def _postgresql_rows(rows: list[tuple]) -> Iterator[Row]:
    """Rows read with POSTGRESQL_COLUMNS, their stored JSON text made canonical."""
    for row in rows:
        values = list(row)
        values[12] = _canonical_from_text(values[12])
        values[13] = _canonical_from_text(values[13])
        yield Row._make(values)


def _postgresql_pages(where: str, params: list) -> Iterator[Row]:
    """Matching events by number, a page at a time (keyset on the primary key)."""
    after = 0
    table = AuditEvent._meta.db_table
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                # Only fixed column and table names are interpolated; values are parameters.
                f"SELECT {POSTGRESQL_COLUMNS} FROM {table} "  # noqa: S608
                f"WHERE {where} AND id > %s ORDER BY id LIMIT %s",
                [*params, after, ROWS_PER_QUERY],
            )
            rows = cursor.fetchall()
        yield from _postgresql_rows(rows)
        if len(rows) < ROWS_PER_QUERY:
            return
        after = rows[-1][0]


def _orm_pages(queryset, key: str) -> Iterator[Row]:
    after = 0
    while True:
        rows = list(
            queryset.filter(**{f"{key}__gt": after})
            .order_by(key)
            .values_list(*ORM_COLUMNS)[:ROWS_PER_QUERY]
        )
        for row in rows:
            values = list(row)
            values[3] = at_text(values[3])
            values[12] = canonical_json(values[12])
            values[13] = canonical_json(values[13])
            yield Row._make(values)
        if len(rows) < ROWS_PER_QUERY:
            return
        after = rows[-1][0] if key == "id" else rows[-1][2]


def _postgresql_chain_pages(chain: int) -> Iterator[Row]:
    """A chain's events in ranges of positions, up to its highest. Positions run without gaps
    in an intact chain, so each range is one page; naming both ends keeps the planner on the
    (chain, seq) index (with an open end it may sort a whole chain instead)."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(seq) FROM {table} WHERE chain = %s", [chain])  # noqa: S608
        top = cursor.fetchone()[0] or 0
    after = 0
    while after < top:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {POSTGRESQL_COLUMNS} FROM {table} "  # noqa: S608
                "WHERE chain = %s AND seq > %s AND seq <= %s ORDER BY seq",
                [chain, after, after + ROWS_PER_QUERY],
            )
            rows = cursor.fetchall()
        yield from _postgresql_rows(rows)
        after += ROWS_PER_QUERY
        if not rows:
            # A gap (a broken chain): jump to the next position there is.
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT MIN(seq) FROM {table} WHERE chain = %s AND seq > %s",  # noqa: S608
                    [chain, after],
                )
                following = cursor.fetchone()[0]
            if following is None:
                return
            after = following - 1


def chain_rows(chain: int) -> Iterator[Row]:
    """The events of one chain by position."""
    if connection.vendor == "postgresql":
        return _postgresql_chain_pages(chain)
    return _orm_pages(AuditEvent.objects.filter(chain=chain), key="seq")


def filtered_rows(queryset, *, upto: int) -> Iterator[Row]:
    """The events of a filtered queryset up to event number `upto`, by number."""
    queryset = queryset.filter(id__lte=upto)
    if connection.vendor == "postgresql":
        # The filters are plain conditions on the events' own columns (no join), compiled by
        # Django with their parameters.
        where, params = queryset.query.get_compiler(connection=connection).compile(
            queryset.query.where
        )
        return _postgresql_pages(where or "TRUE", list(params))
    return _orm_pages(queryset, key="id")


def chains_present() -> list[int]:
    """Every chain that holds an event, found through the (chain, seq) index one chain at a
    time (a loose index scan), so that an event forged into an unknown chain is walked too."""
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""WITH RECURSIVE chains(chain) AS (
                    SELECT MIN(chain) FROM {table}
                    UNION ALL
                    SELECT (SELECT MIN(chain) FROM {table} WHERE chain > chains.chain)
                    FROM chains WHERE chains.chain IS NOT NULL
                )
                SELECT chain FROM chains WHERE chain IS NOT NULL"""  # noqa: S608
        )
        return [row[0] for row in cursor.fetchall()]
