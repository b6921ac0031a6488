"""Database triggers that make the audit tables append-only, whatever client writes to them.

The ORM refuses updates and deletes too (models.AppendOnlyModel), but only the database can
stop raw SQL, a shell or another application. On PostgreSQL the app's own role is also refused
UPDATE, DELETE and TRUNCATE there, and cannot drop these triggers (registrations.db_roles).
"""

EVENTS = "registrations_auditevent"
CHECKPOINTS = "registrations_auditcheckpoint"
APPEND_ONLY_TABLES = (EVENTS, CHECKPOINTS)
# Kept for code written when the events were the only append-only table.
TABLE = EVENTS


def _sqlite_create(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit records are append-only: UPDATE refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
            BEGIN SELECT RAISE(ABORT, 'audit records are append-only: DELETE refused'); END""",
    ]


def _sqlite_drop(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update",
        f"DROP TRIGGER IF EXISTS {table}_no_delete",
    ]


POSTGRESQL_FUNCTION = """CREATE OR REPLACE FUNCTION simreg_audit_append_only() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION USING
       MESSAGE = 'audit records are append-only: ' || TG_OP || ' refused',
       ERRCODE = 'insufficient_privilege';
   END $$"""


def _postgresql_create(table: str) -> list[str]:
    return [
        POSTGRESQL_FUNCTION,
        f"""CREATE OR REPLACE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION simreg_audit_append_only()""",
        f"""CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION simreg_audit_append_only()""",
    ]


def _postgresql_drop(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table}",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
    ]


_CREATE = {"sqlite": _sqlite_create, "postgresql": _postgresql_create}
_DROP = {"sqlite": _sqlite_drop, "postgresql": _postgresql_drop}


def create_statements(vendor: str, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> list[str]:
    if vendor not in _CREATE:
        return []
    return [statement for table in tables for statement in _CREATE[vendor](table)]


def drop_statements(vendor: str, tables: tuple[str, ...] = APPEND_ONLY_TABLES) -> list[str]:
    if vendor not in _DROP:
        return []
    return [statement for table in tables for statement in _DROP[vendor](table)]
