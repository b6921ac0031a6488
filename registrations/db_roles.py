"""The privileges of the app's own database role on PostgreSQL: it cannot rewrite history.

The app connects as a role that owns nothing; the tables belong to the role that runs the
migrations. Triggers refuse UPDATE and DELETE on the audit tables (registrations.db_triggers),
but the owner of a table may drop its triggers: so the app role is also refused those
statements by privilege, and, owning nothing, can neither drop nor disable a trigger.
`migrate` calls `app_role_grant` after migrating, so a table added by a migration is granted
before the app uses it.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils.translation import gettext as _

from registrations import db_triggers

SCHEMA = "public"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
APPEND_ONLY = ("SELECT", "INSERT")
# The tables on which the app role keeps less than on the others (SELECT, INSERT, UPDATE,
# DELETE), with what it keeps. A table that does not exist yet is skipped; its partitions, when
# it is partitioned, are restricted like it.
RESTRICTED_TABLES: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(db_triggers.APPEND_ONLY_TABLES, APPEND_ONLY),
    # One head row per chain: moved forward by every append, never removed.
    "registrations_auditchain": ("SELECT", "INSERT", "UPDATE"),
}


@dataclass(frozen=True)
class RoleGrant:
    """What `app_role_grant` did; not `ok` means the app role can still rewrite history."""

    ok: bool
    message: str


def app_role_grant(*, connection: BaseDatabaseWrapper, role: str) -> RoleGrant:
    """Give `role` what the app needs in the schema and take back what would rewrite history.

    Runs as the owner of the tables and may run any number of times: each run sets the same
    privileges, whatever was granted before. Grants nothing to a role that owns a table or may
    act as its owner, since no privilege can be taken from an owner.
    """
    if connection.vendor != "postgresql":
        return RoleGrant(ok=False, message=_("Database roles exist on PostgreSQL only."))
    quoted_role = connection.ops.quote_name(role)
    schema = connection.ops.quote_name(SCHEMA)
    # One transaction: the app never sees UPDATE granted on an audit table before the REVOKE.
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        refusal = _refusal(cursor=cursor, role=role)
        if refusal:
            return RoleGrant(ok=False, message=refusal)
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema} TO {quoted_role}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} "
            f"TO {quoted_role}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {quoted_role}")
        cursor.execute(
            """SELECT base.relname, part.oid::regclass::text
               FROM pg_class base
               JOIN pg_namespace n ON n.oid = base.relnamespace
               LEFT JOIN LATERAL pg_partition_tree(base.oid) tree ON true
               JOIN pg_class part ON part.oid = coalesce(tree.relid, base.oid)
               WHERE n.nspname = %s AND base.relname = ANY(%s)""",
            [SCHEMA, list(RESTRICTED_TABLES)],
        )
        for restricted, table in cursor.fetchall():
            kept = RESTRICTED_TABLES[restricted]
            taken = ", ".join(p for p in TABLE_PRIVILEGES if p not in kept)
            # `table` is the name as PostgreSQL prints a regclass: quoted where needed.
            cursor.execute(f"REVOKE {taken} ON TABLE {table} FROM {quoted_role}")
            cursor.execute(f"GRANT {', '.join(kept)} ON TABLE {table} TO {quoted_role}")
        cursor.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [role, SCHEMA])
        (may_create,) = cursor.fetchone()
    if may_create:
        # A table the app role creates is its own, and an owner can rewrite it.
        return RoleGrant(
            ok=False,
            message=_(
                "Privileges granted to the database role %(role)s, but it may still create "
                "tables in the schema %(schema)s: run REVOKE CREATE ON SCHEMA %(schema)s "
                "FROM PUBLIC."
            )
            % {"role": role, "schema": SCHEMA},
        )
    return RoleGrant(
        ok=True,
        message=_(
            "Privileges granted to the database role %(role)s (append-only on the audit tables)."
        )
        % {"role": role},
    )


def _refusal(*, cursor: CursorWrapper, role: str) -> str:
    """Why `role` cannot be made the app role, or "" when it can."""
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
    row = cursor.fetchone()
    if row is None:
        return _(
            "The database role %(role)s does not exist: no privilege was granted. Create it "
            "(LOGIN, not a superuser) and run migrate again."
        ) % {"role": role}
    # MEMBER: a member of the owner's role may SET ROLE to it and act as the owner.
    cursor.execute(
        """SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = %s AND pg_has_role(%s, c.relowner, 'MEMBER')""",
        [SCHEMA, role],
    )
    (owned,) = cursor.fetchone()
    if row[0] or owned:
        return _(
            "The database role %(role)s is a superuser or owns tables of the database, so it "
            "could rewrite the audit log: no privilege was granted. Connect the app as a role "
            "that owns nothing and set MIGRATION_DATABASE_URL to the owner's credentials."
        ) % {"role": role}
    return ""
