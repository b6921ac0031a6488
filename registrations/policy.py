"""Jurisdiction rules: one profile per jurisdiction, chosen by the SIMREG_POLICY setting.

Every figure the rules use is a field of a profile, never a literal in the code that applies it.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from registrations.models import DocumentType, Registration, TerminationCause


class MinorRule(enum.StrEnum):
    """How a customer under the profile's minor age is registered."""

    # The adult confirms and is registered beside the minor (Hong Kong).
    CONFIRMING_ADULT = "confirming_adult"
    # The SIM is registered in the parent's or guardian's name (Philippines).
    GUARDIAN_NAME = "guardian_name"


@dataclass(frozen=True)
class PolicyProfile:
    code: str
    name: str
    # Per-person caps by plan (None: no cap); a company has its own cap for prepaid SIMs.
    prepaid_limit_per_person: int | None
    prepaid_limit_per_company: int | None
    service_plan_limit: int | None
    # A customer younger than minor_age needs an adult at least adult_age old.
    minor_age: int
    adult_age: int
    minor_rule: MinorRule
    retention_after_termination: datetime.timedelta
    draft_max_age: datetime.timedelta
    review_target: datetime.timedelta
    proof_of_address_required: bool
    chinese_name_field: bool
    msisdn_region: str
    document_types: tuple[str, ...]
    # How long a SIM may stay in service before it is registered (zero: registered first).
    unregistered_sim_active_for: datetime.timedelta
    # How long a SIM reported lost, stolen or damaged stays suspended before it is deactivated,
    # unless a replacement or a termination ends the suspension first.
    suspended_sim_active_for: datetime.timedelta
    # How long after its deactivation a SIM may still be reactivated (None: it cannot be).
    reactivation_window: datetime.timedelta | None
    # How long a registration ended by the subscriber's death is kept after the termination.
    retention_after_death: datetime.timedelta
    # How soon the regulator must hear of a breach of personal data after it was found (None:
    # no statutory deadline; notify as soon as practicable).
    breach_notification_deadline: datetime.timedelta | None


HONG_KONG = PolicyProfile(
    code="hk",
    name="Hong Kong (Real-name Registration Programme for SIM Cards)",
    prepaid_limit_per_person=10,
    prepaid_limit_per_company=25,
    service_plan_limit=None,
    minor_age=16,
    adult_age=18,
    minor_rule=MinorRule.CONFIRMING_ADULT,
    retention_after_termination=datetime.timedelta(days=365),
    draft_max_age=datetime.timedelta(days=7),
    review_target=datetime.timedelta(hours=24),
    proof_of_address_required=False,
    chinese_name_field=True,
    msisdn_region="HK",
    document_types=(
        DocumentType.HKID,
        DocumentType.PASSPORT,
        DocumentType.MACAO_ID,
        DocumentType.EXIT_ENTRY_PERMIT,
        DocumentType.BUSINESS_REGISTRATION,
    ),
    # Telecommunications (Registration of SIM Cards) Regulation (Cap. 106AI): a SIM card is
    # registered before the service is provided; none is served unregistered.
    unregistered_sim_active_for=datetime.timedelta(0),
    # Cap. 106AI sets no period for a suspended SIM; 30 days is the operator's own figure,
    # long enough to replace the SIM or end the service.
    suspended_sim_active_for=datetime.timedelta(days=30),
    # Cap. 106AI has no reactivation after deregistration: the SIM is registered anew.
    reactivation_window=None,
    # Cap. 106AI keeps registration records at least 12 months after deregistration, whatever
    # the cause; the Personal Data (Privacy) Ordinance (Cap. 486, DPP2) no longer than needed.
    retention_after_death=datetime.timedelta(days=365),
    # Personal Data (Privacy) Ordinance (Cap. 486): no mandatory breach notification; the
    # Privacy Commissioner's Guidance on Data Breach Handling asks for notice as soon as
    # practicable.
    breach_notification_deadline=None,
)

PHILIPPINES = PolicyProfile(
    code="ph",
    name="Philippines (SIM Registration Act, RA 11934)",
    prepaid_limit_per_person=None,
    prepaid_limit_per_company=None,
    service_plan_limit=None,
    minor_age=18,
    adult_age=18,
    minor_rule=MinorRule.GUARDIAN_NAME,
    retention_after_termination=datetime.timedelta(days=3653),
    draft_max_age=datetime.timedelta(days=7),
    review_target=datetime.timedelta(hours=24),
    proof_of_address_required=False,
    chinese_name_field=False,
    msisdn_region="PH",
    document_types=(DocumentType.PASSPORT, DocumentType.BUSINESS_REGISTRATION),
    # RA 11934 s. 4 and its IRR: SIMs are sold in a deactivated state and activated only
    # after registration.
    unregistered_sim_active_for=datetime.timedelta(0),
    # RA 11934 and its IRR set no period for a SIM reported lost or stolen; 30 days is the
    # operator's own figure, as in the Hong Kong profile.
    suspended_sim_active_for=datetime.timedelta(days=30),
    # RA 11934 IRR (NTC Memorandum Circular 001-12-2022): a deactivated SIM may be reactivated
    # after registration, not later than five days after its deactivation.
    reactivation_window=datetime.timedelta(days=5),
    # RA 11934: registration data is kept ten years after the SIM is deactivated; the subscriber's
    # death is a deactivation like any other.
    retention_after_death=datetime.timedelta(days=3653),
    # NPC Circular 16-03 under the Data Privacy Act (RA 10173), s. 17: the National Privacy
    # Commission is notified within 72 hours of knowledge of the breach.
    breach_notification_deadline=datetime.timedelta(hours=72),
)

PROFILES = {profile.code: profile for profile in (HONG_KONG, PHILIPPINES)}


def current_policy() -> PolicyProfile:
    try:
        return PROFILES[settings.SIMREG_POLICY]
    except KeyError as exc:
        raise ImproperlyConfigured(
            f"SIMREG_POLICY={settings.SIMREG_POLICY!r} is not a known profile: "
            f"choose one of {', '.join(sorted(PROFILES))}."
        ) from exc


def sim_limit(policy: PolicyProfile, *, plan: str, is_company: bool) -> int | None:
    """The cap on active SIMs of this plan for one customer; None when there is none."""
    if plan == Registration.Plan.SERVICE_PLAN:
        return policy.service_plan_limit
    return policy.prepaid_limit_per_company if is_company else policy.prepaid_limit_per_person


def retention_after(policy: PolicyProfile, *, cause: str) -> datetime.timedelta:
    """How long an ended registration is kept after its termination, by the cause of it."""
    if cause == TerminationCause.DEATH:
        return policy.retention_after_death
    return policy.retention_after_termination


def suspended_sim_deactivation_at(
    policy: PolicyProfile, *, suspended_at: datetime.datetime
) -> datetime.datetime:
    """When a suspended SIM is deactivated unless the suspension ends first."""
    return suspended_at + policy.suspended_sim_active_for


def breach_notification_due(
    policy: PolicyProfile, *, found_at: datetime.datetime
) -> datetime.datetime | None:
    """By when the regulator must hear of a breach found at `found_at`; None: no deadline."""
    if policy.breach_notification_deadline is None:
        return None
    return found_at + policy.breach_notification_deadline
