"""Reads that show records: every showing of a record, a list of records or the audit log is one
audit event (invariant 4), written here so that pages never write to the audit log themselves.

Each function writes exactly one event: a page calls one of them once per showing. The event is
one statement, atomic on its own: no transaction around it, so a page view costs one round trip
and holds its chain's lock for that statement only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from registrations.audit import COMMAND_LINE, AuditFilters, Origin, audit_record
from registrations.models import AuditEvent, Registration, Store, User


def registration_view_record(
    *,
    actor: User,
    registration: Registration,
    origin: Origin = COMMAND_LINE,
    page: str,
    after: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A page showed this record's data: which page, and after which refused form if any."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.VIEWED,
        origin=origin,
        registration=registration,
        details={"page": page, **({"after": after} if after else {}), **(details or {})},
    )


def registration_view_receipt(
    *, actor: User, registration: Registration, origin: Origin = COMMAND_LINE
) -> AuditEvent:
    """The customer's receipt was shown (to print)."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.RECEIPT_VIEWED,
        origin=origin,
        registration=registration,
    )


def registration_view_list(
    *,
    actor: User,
    origin: Origin = COMMAND_LINE,
    view: str,
    references: Iterable[str],
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """A page listed records: the references shown, so the audit says what the list disclosed."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.LISTED,
        origin=origin,
        details={"view": view, "references": list(references), **(details or {})},
    )


# What the counter's lists show of each customer, masked: the audit names these fields, never
# their values.
COUNTER_LIST_MASKED = ("name_en", "name_zh", "msisdn")


def registration_view_counter_list(
    *,
    actor: User,
    origin: Origin = COMMAND_LINE,
    view: str,
    list_name: str,
    page: int,
    references: list[str],
    store: Store | None = None,
) -> AuditEvent:
    """A counter list showed a page of records with their customers' names decrypted and
    masked: which list and page, how many rows and which, the fields shown masked."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.LISTED,
        origin=origin,
        store=store,
        fields=COUNTER_LIST_MASKED,
        details={
            "view": view,
            "list": list_name,
            "page": page,
            "rows": len(references),
            "references": references,
        },
    )


def registration_view_search(
    *, actor: User, origin: Origin = COMMAND_LINE, by: str, references: list[str]
) -> AuditEvent:
    """A search at the counter: how it searched (never the number typed) and what it found."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.SEARCHED,
        origin=origin,
        details={"by": by, "matches": len(references), "references": references},
    )


def _references(events: Iterable[AuditEvent]) -> list[str]:
    return sorted(
        {event.registration_reference for event in events if event.registration_reference}
    )


def audit_event_view_list(
    *,
    actor: User,
    origin: Origin = COMMAND_LINE,
    view: str,
    events: Iterable[AuditEvent],
    parameters: Iterable[str] = (),
) -> AuditEvent:
    """A page listed audit events: their numbers and the records they name.

    `parameters` are the names of the filters applied, never their values: a search box takes
    whatever is typed, an identity value included.
    """
    events = list(events)
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.LISTED,
        origin=origin,
        details={
            "view": view,
            "events": [event.pk for event in events],
            "references": _references(events),
            "parameters": sorted(set(parameters)),
        },
    )


def audit_event_view_record(
    *, actor: User, origin: Origin = COMMAND_LINE, view: str, event: AuditEvent
) -> AuditEvent:
    """A page showed one audit event in full."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.VIEWED,
        origin=origin,
        details={"view": view, "event": event.pk, "references": _references([event])},
    )


def audit_log_view_list(
    *, actor: User, origin: Origin = COMMAND_LINE, filters: AuditFilters
) -> AuditEvent:
    """The audit log's page listed events: under which filters, as an export records them."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.LISTED,
        origin=origin,
        details={"view": "audit", "filters": filters.as_details()},
    )
