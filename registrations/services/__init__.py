"""Writes. Every service validates, saves and writes its own audit event in one transaction.

Views, forms, admin actions and management commands call these; nothing saves a model behind
their back. One module per area; the names below are the package's interface.
"""

from registrations.services.accounts import (
    decisions_mark_seen,
    sign_in_refused,
    store_create_or_update,
    user_create_or_update,
)
from registrations.services.counter import (
    EDITABLE_STATUSES,
    MISSING,
    RepresentativeDetails,
    document_copy_read,
    document_copy_store,
    document_type_errors,
    registration_create_draft,
    registration_discard_draft,
    registration_request_change,
    registration_request_termination,
    registration_save_channel,
    registration_save_identity,
    registration_save_materials,
    registration_submit,
)
from registrations.services.retention import (
    document_files_purge_orphans,
    drafts_purge_stale,
    registration_purge_identity,
    registrations_purge_expired,
)
from registrations.services.review import (
    REVEALABLE_FIELDS,
    DecisionConflict,
    identity_reveal,
    pending_change_decide,
    pending_change_reveal,
    registration_decide,
)

__all__ = [
    "EDITABLE_STATUSES",
    "MISSING",
    "REVEALABLE_FIELDS",
    "DecisionConflict",
    "RepresentativeDetails",
    "decisions_mark_seen",
    "document_copy_read",
    "document_copy_store",
    "document_files_purge_orphans",
    "document_type_errors",
    "drafts_purge_stale",
    "identity_reveal",
    "pending_change_decide",
    "pending_change_reveal",
    "registration_create_draft",
    "registration_decide",
    "registration_discard_draft",
    "registration_purge_identity",
    "registration_request_change",
    "registration_request_termination",
    "registration_save_channel",
    "registration_save_identity",
    "registration_save_materials",
    "registration_submit",
    "registrations_purge_expired",
    "sign_in_refused",
    "store_create_or_update",
    "user_create_or_update",
]
