"""Appending to the audit log: independent hash chains, one statement per event.

Events go to one of `AUDIT_CHAINS` chains, chosen by the store (else the actor, else chain 0),
so that two stores never wait for each other. Each chain has its own positions 1, 2, ... and
its own head row (models.AuditChain); an append locks that one row until its transaction
commits, which serialises the chain and nothing else.

An event's hash links it into its chain:

    content = SHA-256 of the canonical JSON of the event's content (see `content_digest`)
    hash    = SHA-256 of "<chain>:<seq>:<prev_hash>:<content>"

where `prev_hash` is the hash of the event before it in the chain (GENESIS_HASH for the first).
Both are plain SHA-256, so anyone can recompute them from an export. The hash has no key: a
re-hashed chain is caught by the signed checkpoints (registrations.audit.checkpoints).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from registrations import metrics
from registrations.models import AuditChain, AuditEvent, Registration, Store, User

GENESIS_HASH = "0" * 64
# How an event's time is written where its hash is computed, and in exports.
AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# The keys of an event's content, as they appear in its canonical form and in exports.
CONTENT_KEYS = (
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
)
# An event's columns in the documented order of an export: its number, its place in its chain,
# its content, its links.
EVENT_COLUMNS = ("id", "chain", "seq", *CONTENT_KEYS, "prev_hash", "hash")


@dataclass(frozen=True)
class Origin:
    """Where an action came from: the client address and user agent of a request, or a command."""

    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def of(cls, request: HttpRequest | None) -> Origin:
        if request is None:
            return cls()
        ip = request.META.get("REMOTE_ADDR") or None
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if getattr(settings, "CLIENT_IP_FROM_FORWARDED_FOR", False) and forwarded:
            ip = forwarded.split(",")[-1].strip()
        try:
            ip = ipaddress.ip_address(ip).compressed if ip else None
        except ValueError:
            ip = None
        # A header may carry anything, NUL included, which PostgreSQL text refuses.
        user_agent = request.META.get("HTTP_USER_AGENT", "").replace("\x00", "")[:300]
        return cls(ip=ip, user_agent=user_agent)


COMMAND_LINE = Origin(user_agent="manage.py")


def at_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime(AT_FORMAT)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_digest(content: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an event's content: the CONTENT_KEYS, with the
    time as text in UTC (AT_FORMAT), keys sorted, no spaces, UTF-8."""
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def link_hash(*, chain: int, seq: int, prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{chain}:{seq}:{prev_hash}:{content}".encode()).hexdigest()


def _content_values(event: AuditEvent) -> dict[str, Any]:
    """The event's CONTENT_KEYS and their values as stored (the time as a datetime)."""
    return {key: getattr(event, key) for key in CONTENT_KEYS}


def event_content(event: AuditEvent) -> dict[str, Any]:
    return {**_content_values(event), "at": at_text(event.at)}


def event_hash(event: AuditEvent) -> str:
    """The hash an event must have, recomputed from its columns."""
    return link_hash(
        chain=event.chain,
        seq=event.seq,
        prev_hash=event.prev_hash,
        content=content_digest(event_content(event)),
    )


def chain_for(*, store_code: str, actor_id: int | None, chains: int) -> int:
    """A stable chain for a store (or, without one, an actor); chain 0 for the system."""
    if store_code:
        key = f"store:{store_code}"
    elif actor_id:
        key = f"actor:{actor_id}"
    else:
        return 0
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % chains


class _HeldChain:
    """Marks, in the transaction's on-commit list, the chain that transaction appends to.

    Django drops a transaction's on-commit callbacks when it rolls back, so the marker is found
    there exactly while the same transaction goes on.
    """

    def __init__(self, chain: int) -> None:
        self.chain = chain

    def __call__(self) -> None:
        pass


def _transaction_chain(preferred: int) -> int:
    """The chain for the next event of the current transaction.

    All the events of one transaction go to the chain of its first event: a transaction then
    holds at most one chain's lock, so two transactions can never deadlock over chains.
    """
    if not connection.in_atomic_block:
        return preferred
    for _sids, callback, _robust in connection.run_on_commit:
        if isinstance(callback, _HeldChain):
            return callback.chain
    transaction.on_commit(_HeldChain(preferred))
    return preferred


# One statement: take (or create) the chain's head row, lock it, move it on by one event, and
# insert the event linked to the head it replaced. In SET, `h.*` is the row before the update.
POSTGRESQL_APPEND = """
WITH head AS (
    INSERT INTO registrations_auditchain AS h (chain, seq, prev_hash, hash)
    VALUES (%(chain)s, 1, %(genesis)s, %(first_hash)s)
    ON CONFLICT (chain) DO UPDATE SET
        seq = h.seq + 1,
        prev_hash = h.hash,
        hash = encode(sha256(convert_to(
            h.chain::text || ':' || (h.seq + 1)::text || ':' || h.hash || ':' || %(content)s,
            'UTF8')), 'hex')
    RETURNING seq, prev_hash, hash
)
INSERT INTO registrations_auditevent (
    chain, seq, at, actor_id, actor_username, action, registration_reference, store_code,
    ip, user_agent, reason, fields, details, prev_hash, hash
)
SELECT %(chain)s, head.seq, %(at)s, %(actor_id)s, %(actor_username)s, %(action)s,
       %(registration_reference)s, %(store_code)s, %(ip)s::inet, %(user_agent)s, %(reason)s,
       %(fields)s::jsonb, %(details)s::jsonb, head.prev_hash, head.hash
FROM head
RETURNING id, seq, prev_hash, hash
"""


def _append_postgresql(event: AuditEvent, content: str) -> None:
    params = {
        "chain": event.chain,
        "genesis": GENESIS_HASH,
        "first_hash": link_hash(chain=event.chain, seq=1, prev_hash=GENESIS_HASH, content=content),
        "content": content,
        **_content_values(event),
        "fields": canonical_json(event.fields),
        "details": canonical_json(event.details),
    }
    with connection.cursor() as cursor:
        cursor.execute(POSTGRESQL_APPEND, params)
        event.id, event.seq, event.prev_hash, event.hash = cursor.fetchone()
    event._state.adding = False
    event._state.db = connection.alias


def _append_sqlite(event: AuditEvent, content: str) -> None:
    """SQLite: every transaction begins IMMEDIATE (settings), which already holds the
    database's one write lock, so reading the head and writing it cannot interleave."""
    with transaction.atomic(savepoint=False):
        heads = AuditChain.objects.filter(chain=event.chain)
        head = heads.values_list("seq", "hash").first()
        event.seq, event.prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
        event.hash = link_hash(
            chain=event.chain, seq=event.seq, prev_hash=event.prev_hash, content=content
        )
        values = {"seq": event.seq, "prev_hash": event.prev_hash, "hash": event.hash}
        if head:
            heads.update(**values)
        else:
            AuditChain.objects.create(chain=event.chain, **values)
        event.save(force_insert=True)


def audit_record(
    *,
    actor: User | None,
    action: AuditEvent.Action,
    origin: Origin = COMMAND_LINE,
    registration: Registration | None = None,
    store: Store | None = None,
    reason: str = "",
    fields: Iterable[str] = (),
    details: dict[str, Any] | None = None,
    actor_username: str = "",
) -> AuditEvent:
    """Append one event, in the caller's transaction when there is one.

    Call it last in a transaction: the chain's head stays locked until the transaction ends.
    """
    fields = sorted(set(fields))
    bad = [name for name in fields if not FIELD_NAME.match(name)]
    if bad:
        raise ValueError("Audit events hold field names only.")
    if store is None and registration is not None:
        store = registration.store
    event = AuditEvent(
        at=timezone.now(),
        actor=actor if actor is not None and actor.pk else None,
        actor_username=actor_username or (actor.get_username() if actor is not None else ""),
        action=action,
        registration_reference=registration.reference if registration is not None else "",
        store_code=store.code if store is not None else "",
        ip=origin.ip,
        user_agent=origin.user_agent[:300],
        reason=reason[:500],
        fields=fields,
        details=details or {},
    )
    # JSON values as they will be read back, so the content hashes the same on every database.
    event.details = json.loads(canonical_json(event.details))
    event.chain = _transaction_chain(
        chain_for(
            store_code=event.store_code, actor_id=event.actor_id, chains=settings.AUDIT_CHAINS
        )
    )
    content = content_digest(event_content(event))
    if connection.vendor == "postgresql":
        _append_postgresql(event, content)
    else:
        _append_sqlite(event, content)
    metrics.audit_appended(event.action)
    return event
