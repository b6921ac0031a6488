"""Early checks at the identity step: as soon as the document number is typed, what the
customer already holds against the per-person limit and whether the name and date of birth
agree with other registrations of the document, before the rest is typed.

A check reads other registrations (through the blind index, decrypting to compare): each one is
an audit event of a search, naming what was found and never a value typed.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from registrations import selectors
from registrations.audit import COMMAND_LINE, Origin, audit_record
from registrations.models import AuditEvent, Person, Registration, User
from registrations.policy import current_policy, sim_limit
from registrations.services.counter import rules
from registrations.services.counter.records import require_counter_of


@dataclass(frozen=True)
class PlanCount:
    """Active SIMs of one plan the customer holds, and the policy's cap (None: no cap)."""

    plan: str
    count: int
    limit: int | None
    # This registration's plan, which it would add one SIM to.
    this_plan: bool

    @property
    def over(self) -> bool:
        """Whether this registration would take the customer past the cap."""
        return self.this_plan and self.limit is not None and self.count >= self.limit


@dataclass(frozen=True)
class EarlyCheck:
    """What an early check found: counts per plan and a disagreement, by field names only."""

    counts: list[PlanCount]
    discrepancy: rules.Discrepancy

    @property
    def over_limit(self) -> bool:
        return any(count.over for count in self.counts)


@transaction.atomic
def registration_early_check(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    document_number: str,
    name_en: str = "",
    name_zh: str = "",
    date_of_birth: datetime.date | None = None,
) -> EarlyCheck:
    """Check a document number (already validated for the customer's document type) against
    the limit and the other registrations of the document, for a record still at the counter.

    Values arrive in memory only: the audit event names the purpose, how many registrations
    were found and which disagree, never the number or the names.
    """
    require_counter_of(actor, registration.store)
    customer = registration.customer
    if customer is None or registration.status not in Registration.EDITABLE_STATUSES:
        raise ValidationError(_("This registration is not open at the counter."), code="closed")
    document_type = customer.document_type
    policy = current_policy()
    is_company = customer.kind == Person.Kind.COMPANY
    held = selectors.person_active_sim_counts(
        document_type=document_type, document_number=document_number, exclude_pk=registration.pk
    )
    counts = [
        PlanCount(
            plan=plan,
            count=count,
            limit=sim_limit(policy, plan=plan, is_company=is_company),
            this_plan=plan == registration.plan,
        )
        for plan, count in held.items()
    ]
    discrepancy = rules.identity_discrepancy(
        document_type=document_type,
        document_number=document_number,
        name_en=name_en,
        name_zh=name_zh,
        date_of_birth=date_of_birth,
        exclude_pk=registration.pk,
    )
    audit_record(
        actor=actor,
        action=AuditEvent.Action.SEARCHED,
        origin=origin,
        registration=registration,
        details={
            "by": "document",
            "purpose": "early_check",
            "matches": discrepancy.compared,
            "active_sims": sum(held.values()),
            "discrepancy_fields": discrepancy.fields,
            "references": discrepancy.references,
        },
    )
    return EarlyCheck(counts=counts, discrepancy=discrepancy)


def registration_consistency_check_record(
    *,
    registration: Registration,
    actor: User,
    origin: Origin = COMMAND_LINE,
    discrepancy: rules.Discrepancy,
) -> AuditEvent:
    """The identity step compared what was typed with the other registrations of the document
    when it was saved (rules.identity_discrepancy, run by the step's form): that read of other
    customers' data is a search, as the early check is."""
    return audit_record(
        actor=actor,
        action=AuditEvent.Action.SEARCHED,
        origin=origin,
        registration=registration,
        details={
            "by": "document",
            "purpose": "identity_step",
            "matches": discrepancy.compared,
            "discrepancy_fields": discrepancy.fields,
            "references": discrepancy.references,
        },
    )
