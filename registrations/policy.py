"""Jurisdiction rules: one profile per jurisdiction, chosen by the SIMREG_POLICY setting.

Every figure the rules use is a field of a profile, never a literal in the code that applies it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


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
    # "confirming_adult": the adult confirms and is registered beside the minor (Hong Kong);
    # "guardian_name": the SIM is registered in the parent's or guardian's name (Philippines).
    minor_rule: str
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
    minor_rule="confirming_adult",
    retention_after_termination=datetime.timedelta(days=365),
    draft_max_age=datetime.timedelta(days=7),
    review_target=datetime.timedelta(hours=24),
    proof_of_address_required=False,
    chinese_name_field=True,
    msisdn_region="HK",
    document_types=("hkid", "passport", "macao_id", "exit_entry_permit", "business_registration"),
)

PHILIPPINES = PolicyProfile(
    code="ph",
    name="Philippines (SIM Registration Act, RA 11934)",
    prepaid_limit_per_person=None,
    prepaid_limit_per_company=None,
    service_plan_limit=None,
    minor_age=18,
    adult_age=18,
    minor_rule="guardian_name",
    retention_after_termination=datetime.timedelta(days=3653),
    draft_max_age=datetime.timedelta(days=7),
    review_target=datetime.timedelta(hours=24),
    proof_of_address_required=False,
    chinese_name_field=False,
    msisdn_region="PH",
    document_types=("passport", "business_registration"),
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
    if plan == "service_plan":
        return policy.service_plan_limit
    return policy.prepaid_limit_per_company if is_company else policy.prepaid_limit_per_person
