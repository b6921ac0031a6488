"""The standard database backends, except that a test-database flush lifts the audit triggers."""

from registrations import db_triggers


class FlushLiftsAuditTriggers:
    """A DatabaseOperations mixin: the append-only tables' triggers are dropped for a flush
    between tests and created again after it."""

    def sql_flush(self, style, tables, **kwargs):
        statements = super().sql_flush(style, tables, **kwargs)
        guarded = tuple(table for table in db_triggers.APPEND_ONLY_TABLES if table in tables)
        if not guarded:
            return statements
        vendor = self.connection.vendor
        return (
            db_triggers.drop_statements(vendor, guarded)
            + statements
            + db_triggers.create_statements(vendor, guarded)
        )
