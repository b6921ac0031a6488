"""The standard sqlite3 backend, except that a test-database flush lifts the audit triggers."""

from django.db.backends.sqlite3 import base

from registrations import db_triggers


class DatabaseOperations(base.DatabaseOperations):
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


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
