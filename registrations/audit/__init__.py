"""The audit log: who did what to which record, when, from where and why; never identity values.

`audit_record` is the one entry point that writes an event. The package holds one concern a
module: `chain` (appending to independent hash chains), `checkpoints` (signed heads),
`verification` (checking the log in the database) and `export` (files, and checking a file on
its own). Other code imports from here, never from the modules.
"""

from registrations.audit.chain import (
    AT_FORMAT,
    COMMAND_LINE,
    EVENT_COLUMNS,
    FIELD_NAME,
    GENESIS_HASH,
    Origin,
    audit_record,
    event_hash,
)
from registrations.audit.checkpoints import (
    SealRefused,
    checkpoint_seal,
    public_key_hex,
    signing_key,
    trusted_public_keys,
)
from registrations.audit.export import (
    CSV,
    EXPORT_FORMATS,
    JSONL,
    MAX_YEAR,
    MIN_YEAR,
    AuditExport,
    AuditFilters,
    ExportReport,
    audit_export_ended,
    audit_export_started,
    audit_export_stream,
    event_number,
    time_in_range,
    verify_export,
)
from registrations.audit.verification import (
    Anchor,
    AnchorCheck,
    AuditCheck,
    ChainReport,
    audit_chain_check,
    audit_chain_verify,
)

__all__ = [
    "AT_FORMAT",
    "COMMAND_LINE",
    "CSV",
    "EVENT_COLUMNS",
    "EXPORT_FORMATS",
    "FIELD_NAME",
    "GENESIS_HASH",
    "JSONL",
    "MAX_YEAR",
    "MIN_YEAR",
    "Anchor",
    "AnchorCheck",
    "AuditCheck",
    "AuditExport",
    "AuditFilters",
    "ChainReport",
    "ExportReport",
    "Origin",
    "SealRefused",
    "audit_chain_check",
    "audit_chain_verify",
    "audit_export_ended",
    "audit_export_started",
    "audit_export_stream",
    "audit_record",
    "checkpoint_seal",
    "event_hash",
    "event_number",
    "public_key_hex",
    "signing_key",
    "time_in_range",
    "trusted_public_keys",
    "verify_export",
]
