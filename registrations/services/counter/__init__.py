"""The counter: a draft saved step by step (steps), the rules of each step (rules), submission
(submit), and updates and terminations asked for at the counter (changes); `records` holds what
they share: the row locked, the actor checked, the editors noted for the four-eyes rule.

Document copies, which the counter uploads, are services.documents.
"""

from registrations.services.counter.changes import (
    registration_request_change,
    registration_request_termination,
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
    materials_checked,
    update_checked,
)
from registrations.services.counter.steps import (
    registration_create_draft,
    registration_discard_draft,
    registration_save_channel,
    registration_save_identity,
    registration_save_materials,
)
from registrations.services.counter.submit import registration_submit

__all__ = [
    "EDITABLE_STATUSES",
    "IDENTITY_NEEDED",
    "MATERIALS_NEEDED",
    "MISSING",
    "ChangeDetails",
    "IdentityDetails",
    "MaterialsDetails",
    "RepresentativeDetails",
    "channel_checked",
    "declaration_errors",
    "document_type_errors",
    "identity_checked",
    "materials_checked",
    "registration_create_draft",
    "registration_discard_draft",
    "registration_request_change",
    "registration_request_termination",
    "registration_save_channel",
    "registration_save_identity",
    "registration_save_materials",
    "registration_submit",
    "update_checked",
]
