"""The standard sqlite3 backend, except that a test-database flush lifts the audit triggers."""

from django.db.backends.sqlite3 import base

from registrations import db_triggers


class DatabaseOperations(base.DatabaseOperations):
    def sql_flush(self, style, tables, **kwargs):
        statements = super().sql_flush(style, tables, **kwargs)
        if db_triggers.TABLE not in tables:
            return statements
        vendor = self.connection.vendor
        return (
            db_triggers.drop_statements(vendor) + statements + db_triggers.create_statements(vendor)
        )


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
