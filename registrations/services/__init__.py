"""Writes. Every service validates, saves and writes its own audit event in one transaction.

Views, forms, admin actions and management commands call these; nothing saves a model behind
their back. One module per area; the names below are the package's interface.
"""

from registrations.services.accounts import (
    decisions_mark_seen,
    store_create_or_update,
    user_create_or_update,
    user_password_changed,
    user_password_reset,
)
from registrations.services.compliance import (
    ExportUnavailable,
    audit_export_download,
    audit_exports_purge,
    audit_job_run,
    audit_job_start_export,
    audit_job_start_verify,
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
from registrations.services.reads import (
    audit_event_view_list,
    audit_event_view_record,
    registration_view_list,
    registration_view_receipt,
    registration_view_record,
    registration_view_search,
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
from registrations.services.second_factor import (
    CodeCheck,
    second_factor_enrol_confirm,
    second_factor_enrol_key,
    second_factor_enrolment_start,
    second_factor_reset,
    second_factor_verify,
)
from registrations.services.sign_in import (
    SignInAttempt,
    sign_in_attempt_start,
    sign_in_attempt_succeeded,
    sign_in_counters_purge,
)
from registrations.services.status_counts import (
    registration_status_count_move,
    store_status_counts_rebuild,
)

__all__ = [
    "EDITABLE_STATUSES",
    "MISSING",
    "REVEALABLE_FIELDS",
    "CodeCheck",
    "DecisionConflict",
    "ExportUnavailable",
    "RepresentativeDetails",
    "SignInAttempt",
    "audit_event_view_list",
    "audit_event_view_record",
    "audit_export_download",
    "audit_exports_purge",
    "audit_job_run",
    "audit_job_start_export",
    "audit_job_start_verify",
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
    "registration_status_count_move",
    "registration_submit",
    "registration_view_list",
    "registration_view_receipt",
    "registration_view_record",
    "registration_view_search",
    "registrations_purge_expired",
    "second_factor_enrol_confirm",
    "second_factor_enrol_key",
    "second_factor_enrolment_start",
    "second_factor_reset",
    "second_factor_verify",
    "sign_in_attempt_start",
    "sign_in_attempt_succeeded",
    "sign_in_counters_purge",
    "store_create_or_update",
    "store_status_counts_rebuild",
    "user_create_or_update",
    "user_password_changed",
    "user_password_reset",
]
