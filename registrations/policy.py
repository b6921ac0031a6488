"""Jurisdiction rules: one profile per jurisdiction, chosen by the SIMREG_POLICY setting.

Every figure the rules use is a field of a profile, never a literal in the code that applies it.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from registrations.models import DocumentType, Registration


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
