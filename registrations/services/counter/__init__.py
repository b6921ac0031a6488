"""The counter: a draft saved step by step (steps), the rules of each step (rules), submission
(submit), updates and terminations asked for at the counter of any store (changes), a lost SIM
and its replacement after the customer's identity is checked again (service); `records` holds what
they share: the row locked, the actor checked, the editors noted for the four-eyes rule.

The early checks of the identity step (early_checks) tell the counter, as the document number is
typed, what the customer holds against the limit and what disagrees with other registrations.

Document copies, which the counter uploads, are services.documents.
"""

from registrations.services.counter.changes import (
    registration_request_change,
    registration_request_termination,
)
from registrations.services.counter.early_checks import (
    EarlyCheck,
    registration_consistency_check_record,
    registration_early_check,
)
from registrations.services.counter.records import EDITABLE_STATUSES
from registrations.services.counter.rules import (
    IDENTITY_NEEDED,
    MATERIALS_NEEDED,
    MISSING,
    ChangeDetails,
    IdentityDetails,
    MaterialsDetails,
    RepresentativeDetails,
    channel_checked,
    declaration_errors,
    document_type_errors,
    identity_checked,
    identity_discrepancy,
    materials_checked,
    update_checked,
)
from registrations.services.counter.service import (
    SIM_LOSS_MISSING,
    IdentityCheck,
    ServicePurpose,
    registration_report_sim_loss,
    registration_request_replacement,
    replacement_sim_checked,
)
from registrations.services.counter.steps import (
    registration_create_draft,
    registration_discard_draft,
    registration_save_channel,
    registration_save_identity,
    registration_save_materials,
)
from registrations.services.counter.subject_report import subject_report_produce
from registrations.services.counter.submit import registration_submit

__all__ = [
    "EDITABLE_STATUSES",
    "IDENTITY_NEEDED",
    "MATERIALS_NEEDED",
    "MISSING",
    "SIM_LOSS_MISSING",
    "ChangeDetails",
    "EarlyCheck",
    "IdentityCheck",
    "IdentityDetails",
    "MaterialsDetails",
    "RepresentativeDetails",
    "ServicePurpose",
    "channel_checked",
    "declaration_errors",
    "document_type_errors",
    "identity_checked",
    "identity_discrepancy",
    "materials_checked",
    "registration_consistency_check_record",
    "registration_create_draft",
    "registration_discard_draft",
    "registration_early_check",
    "registration_report_sim_loss",
    "registration_request_change",
    "registration_request_replacement",
    "registration_request_termination",
    "registration_save_channel",
    "registration_save_identity",
    "registration_save_materials",
    "registration_submit",
    "replacement_sim_checked",
    "subject_report_produce",
    "update_checked",
]
