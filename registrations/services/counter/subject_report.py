"""The subscriber's own report (data subject access): at the counter of any store, after the
customer's identity is checked against the registration opened for service, every registration
of their document across the operator and every access to them from the audit log.

The report is printed for the customer and never stored: the page is the response to the
identity check's POST. Producing it is an audit event on each registration it shows, naming the
references only; a failed check is the same event as before any other service at the counter.
"""

from __future__ import annotations

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, Registration, Store, User
from registrations.services.counter.service import (
    IDENTITY_MISMATCH,
    IdentityCheck,
    IdentityMismatch,
    _checked,
    identity_matches,
)


def _produce(
    *,
    registration: Registration,
    actor: User,
    origin: Origin,
    store: Store,
    identity: IdentityCheck,
) -> list[Registration]:
    if not identity_matches(registration, identity):
        raise IdentityMismatch(IDENTITY_MISMATCH, code="identity_mismatch")
    found = selectors.subject_report_registrations(
        document_type=identity.document_type, document_number=identity.document_number
    )
    shown = found[: selectors.SUBJECT_REPORT_REGISTRATIONS]
    references = [each.reference for each in shown]
    for each in shown:
        audit_record(
            actor=actor,
            action=AuditEvent.Action.SUBJECT_REPORT,
            origin=origin,
            registration=each,
            details={
                "at_store": store.code,
                "checked_on": registration.reference,
                "references": references,
                **({"more": True} if len(found) > len(shown) else {}),
            },
        )
    return found


def subject_report_produce(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    store: Store | None = None,
    identity: IdentityCheck,
) -> list[Registration]:
    """The registrations of the customer whose identity matches `registration`'s, across all
    stores (drafts excepted, SUBJECT_REPORT_REGISTRATIONS + 1 at most), for their own report.

    Counter staff of the store where the customer is served only; the identity is checked first
    and a mismatch is audited and raised (IdentityMismatch), showing nothing.
    """
    return _checked(
        _produce,
        registration=registration,
        actor=actor,
        origin=origin,
        store=store,
        page="subject_report",
        identity=identity,
    )
