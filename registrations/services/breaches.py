"""Suspected breaches of personal data, logged by compliance admins.

A breach record says when the breach was found and happened, what it touched, and when the
regulator and the subscribers were told: what a regulator asks for, and what the policy's
deadline for telling it is measured against. Recording, updating and opening one are audit
events naming the breach and the fields, never what was typed: the description may name people.
"""

from __future__ import annotations

import dataclasses
import datetime

from django.db import transaction
from django.utils import timezone

from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, BreachRecord, User
from registrations.policy import PolicyProfile, breach_notification_due, current_policy

# What a compliance admin enters; the service keeps the rest (who, when, closing time).
BREACH_FIELDS = (
    "found_at",
    "occurred_at",
    "systems_affected",
    "records_affected",
    "description",
    "authority",
    "notified_at",
    "subscribers_told",
    "subscribers_told_at",
    "status",
)


@dataclasses.dataclass(frozen=True)
class BreachDetails:
    """The entered values of a breach record, checked by the form."""

    found_at: datetime.datetime
    systems_affected: str
    records_affected: int
    occurred_at: datetime.datetime | None = None
    description: str = ""
    authority: str = ""
    notified_at: datetime.datetime | None = None
    subscribers_told: bool = False
    subscribers_told_at: datetime.datetime | None = None
    status: str = BreachRecord.Status.OPEN


@dataclasses.dataclass(frozen=True)
class BreachNotice:
    """Where a breach stands against the policy's deadline for telling the regulator."""

    due_at: datetime.datetime | None
    # Not notified and the deadline has passed.
    overdue: bool
    # Notified, but after the deadline.
    late: bool


def breach_notice(
    breach: BreachRecord,
    *,
    now: datetime.datetime | None = None,
    policy: PolicyProfile | None = None,
) -> BreachNotice:
    """The deadline by the policy in force, and whether it was missed."""
    policy = policy or current_policy()
    now = now or timezone.now()
    due_at = breach_notification_due(policy, found_at=breach.found_at)
    if due_at is None:
        return BreachNotice(due_at=None, overdue=False, late=False)
    if breach.notified_at is None:
        return BreachNotice(due_at=due_at, overdue=now > due_at, late=False)
    return BreachNotice(due_at=due_at, overdue=False, late=breach.notified_at > due_at)


def _entered(details: BreachDetails) -> set[str]:
    """The fields given a value: an empty one is not worth naming in the audit event."""
    return {name for name in BREACH_FIELDS if getattr(details, name) not in ("", None, False)}


@transaction.atomic
def breach_record(
    *, actor: User, details: BreachDetails, origin: Origin = COMMAND_LINE
) -> BreachRecord:
    """Log a suspected breach, open until a compliance admin closes it."""
    now = timezone.now()
    values = dataclasses.asdict(details)
    breach = BreachRecord(**values, recorded_by=actor, recorded_at=now, updated_at=now)
    if breach.status == BreachRecord.Status.CLOSED:
        breach.closed_at = now
    breach.save()
    audit_record(
        actor=actor,
        action=AuditEvent.Action.BREACH_RECORDED,
        origin=origin,
        fields=_entered(details) - {"status"},
        details={"breach": breach.pk, "status": breach.status},
    )
    return breach


def _same(stored: object, entered: object) -> bool:
    """Whether an entered value leaves the stored one as it is. Times are entered to the
    minute: a stored time with seconds, shown and sent back unchanged, is no change."""
    if isinstance(stored, datetime.datetime) and isinstance(entered, datetime.datetime):
        return stored.replace(second=0, microsecond=0) == entered.replace(second=0, microsecond=0)
    return stored == entered


@transaction.atomic
def breach_update(
    *,
    breach: BreachRecord,
    actor: User,
    details: BreachDetails,
    origin: Origin = COMMAND_LINE,
) -> list[str]:
    """Change a breach record (a notice given, the subscribers told, closed); return the names
    of the fields that changed. Nothing changed, nothing is written."""
    breach = BreachRecord.objects.select_for_update().get(pk=breach.pk)
    changed = [
        name for name in BREACH_FIELDS if not _same(getattr(breach, name), getattr(details, name))
    ]
    if not changed:
        return []
    now = timezone.now()
    for name in changed:
        setattr(breach, name, getattr(details, name))
    if "status" in changed:
        breach.closed_at = now if breach.status == BreachRecord.Status.CLOSED else None
    breach.updated_at = now
    breach.save()
    audit_record(
        actor=actor,
        action=AuditEvent.Action.BREACH_UPDATED,
        origin=origin,
        fields=changed,
        details={"breach": breach.pk, "status": breach.status},
    )
    return changed


def breach_view(
    *, actor: User, breach: BreachRecord, page: str, origin: Origin = COMMAND_LINE
) -> AuditEvent:
    """A page showed this breach record, its description included: who opened it, and where."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.VIEWED,
        origin=origin,
        details={"breach": breach.pk, "page": page},
    )
