"""The standard sqlite3 backend, except that a test-database flush lifts the audit triggers."""

from django.db.backends.sqlite3 import base

from tests.backends import FlushLiftsAuditTriggers


class DatabaseOperations(FlushLiftsAuditTriggers, base.DatabaseOperations):
    pass


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
