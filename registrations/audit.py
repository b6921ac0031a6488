"""The audit service: one append-only, hash-chained log that every other service writes to.

An event holds who, when, from where, which record and why, and the *names* of the fields
involved; never their values.
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

from registrations.models import AuditEvent, Registration, Store, User

GENESIS_HASH = "0" * 64
# How an event's time is written where its hash is computed, and in exports.
AT_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# Any constant works; it only has to be the same for every process appending to the chain.
AUDIT_CHAIN_LOCK = 0x51_6D_72_65_67_41_75_64  # "simregAud"
FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


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


def canonical_form(
    *,
    seq: int,
    at: datetime,
    actor_id: int | None,
    actor_username: str,
    action: str,
    registration_reference: str,
    store_code: str,
    ip: str | None,
    user_agent: str,
    reason: str,
    fields: list[str],
    details: dict[str, Any],
    prev_hash: str,
) -> bytes:
    """The bytes an event's hash covers. Exports document the same form so anyone can verify."""
    payload = {
        "seq": seq,
        "at": at.astimezone(UTC).strftime(AT_FORMAT),
        "actor_id": actor_id,
        "actor_username": actor_username,
        "action": action,
        "registration_reference": registration_reference,
        "store_code": store_code,
        "ip": ip,
        "user_agent": user_agent,
        "reason": reason,
        "fields": fields,
        "details": details,
        "prev_hash": prev_hash,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(event: AuditEvent) -> str:
    return hashlib.sha256(
        canonical_form(
            seq=event.seq,
            at=event.at,
            actor_id=event.actor_id,
            actor_username=event.actor_username,
            action=event.action,
            registration_reference=event.registration_reference,
            store_code=event.store_code,
            ip=event.ip,
            user_agent=event.user_agent,
            reason=event.reason,
            fields=event.fields,
            details=event.details,
            prev_hash=event.prev_hash,
        )
    ).hexdigest()


def _lock_chain() -> None:
    """Serialise appends so two writers never link to the same predecessor.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: every transaction already begins
    IMMEDIATE (settings), which holds the database's single write lock.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK])


@transaction.atomic
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
    fields = sorted(set(fields))
    bad = [name for name in fields if not FIELD_NAME.match(name)]
    if bad:
        raise ValueError("Audit events hold field names only.")
    if store is None and registration is not None:
        store = registration.store
    _lock_chain()
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    event = AuditEvent(
        seq=(last["seq"] + 1) if last else 1,
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
        prev_hash=last["hash"] if last else GENESIS_HASH,
    )
    event.hash = event_hash(event)
    event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_seq: int | None = None
    problem: str = ""


def audit_chain_verify(*, events: Iterable[AuditEvent] | None = None) -> ChainReport:
    """Recompute the chain and name the first broken link."""
    if events is None:
        events = AuditEvent.objects.order_by("seq").iterator(chunk_size=5000)
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for event in events:
        if event.seq != expected_seq:
            what = "missing (deleted)" if event.seq > expected_seq else "repeated or reordered"
            return ChainReport(
                False, checked, expected_seq, f"event #{expected_seq} is {what}: found #{event.seq}"
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                False,
                checked,
                event.seq,
                f"event #{event.seq} does not link to the event before it "
                "(an event was inserted, deleted or reordered)",
            )
        if event_hash(event) != event.hash:
            return ChainReport(
                False, checked, event.seq, f"event #{event.seq} was edited after it was written"
            )
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    return ChainReport(True, checked)
