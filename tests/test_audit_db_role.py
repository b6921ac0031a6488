"""The app's database role cannot rewrite history.

On PostgreSQL the app connects as a role that owns nothing and may only INSERT and SELECT on the
audit tables; `migrate` runs as the owner and grants those privileges, on the test database too.
These tests connect as that role (`simreg_app`, created by .ci/postgres.sh) next to the Django
connection, which is the owner's.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import quote

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models.signals import post_migrate
from psycopg import sql

from registrations import db_triggers
from registrations.audit import audit_record
from registrations.db_roles import app_role_grant
from registrations.management.commands.migrate import owner_settings_dict
from registrations.models import AuditEvent

APP_ROLE = "simreg_app"
APP_PASSWORD = "simreg_app"  # as .ci/postgres.sh creates it
EVENTS = "registrations_auditevent"
CHECKPOINTS = "registrations_auditcheckpoint"
CHAIN_HEADS = "registrations_auditchain"


def require_app_role() -> None:
    """Skip when the app role was not set up here; fail instead under CI, where it must be."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE])
        exists = cursor.fetchone() is not None
    if not exists:
        problem = f"the database role {APP_ROLE} does not exist (.ci/postgres.sh creates it)"
    elif settings.DATABASE_APP_ROLE != APP_ROLE:
        problem = f"DATABASE_APP_ROLE is not {APP_ROLE}: migrate granted that role nothing"
    else:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(problem)
    pytest.skip(problem)


def table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{name}"])
        return cursor.fetchone()[0]


def app_role_connect(*, role: str = APP_ROLE, password: str = APP_PASSWORD) -> psycopg.Connection:
    """A connection of its own to the test database, outside Django."""
    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        host=params["HOST"] or "localhost",
        port=params["PORT"] or 5432,
        user=role,
        password=password,
        autocommit=True,
    )


@pytest.fixture
def app_db(transactional_db) -> Iterator[psycopg.Connection]:
    """The app role's connection, once an audit event has been committed."""
    require_app_role()
    audit_record(actor=None, action=AuditEvent.Action.VERIFIED)
    with app_role_connect() as app_connection:
        yield app_connection


def count(app_db: psycopg.Connection, table: str) -> int:
    return app_db.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
    ).fetchone()[0]


def user_triggers(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal "
            "ORDER BY tgname",
            [f"public.{table}"],
        )
        return [name for (name,) in cursor.fetchall()]


def rewriting_statements(table: str) -> dict[str, sql.Composed]:
    """What someone with the app's credentials would try in order to rewrite `table`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position LIMIT 1",
            [table],
        )
        (column,) = cursor.fetchone()
    name, column_name = sql.Identifier(table), sql.Identifier(column)
    statements = {
        "update": sql.SQL("UPDATE {} SET {} = {}").format(name, column_name, column_name),
        "delete": sql.SQL("DELETE FROM {}").format(name),
        "truncate": sql.SQL("TRUNCATE {}").format(name),
        "disable triggers": sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(name),
        "drop table": sql.SQL("DROP TABLE {}").format(name),
    }
    for trigger in user_triggers(table):
        statements[f"drop trigger {trigger}"] = sql.SQL("DROP TRIGGER {} ON {}").format(
            sql.Identifier(trigger), name
        )
    return statements


def assert_refused(app_db: psycopg.Connection, statements: dict[str, sql.Composed]) -> None:
    for what, statement in statements.items():
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as refused:
            app_db.execute(statement)
        # Refused for want of a privilege or of ownership, before any trigger had to step in.
        assert "append-only" not in str(refused.value), what


@pytest.mark.postgres_only
def test_the_app_role_reads_and_appends_audit_events(app_db):
    """The app can still write the log: INSERT and SELECT are granted on the events."""
    assert count(app_db, EVENTS) >= 1
    columns = [
        name
        for (name,) in app_db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND table_name = %s AND is_identity = 'NO' AND is_generated = 'NEVER' "
            "ORDER BY ordinal_position",
            [EVENTS],
        )
    ]
    # A copy of the newest event with its own number and hash; whatever columns exist by now.
    values = {
        "seq": sql.SQL("(SELECT max(seq) + 1 FROM {})").format(sql.Identifier(EVENTS)),
        "hash": sql.Literal(secrets.token_hex(32)),
    }
    insert = sql.SQL(
        "INSERT INTO {table} ({columns}) SELECT {values} FROM {table} ORDER BY id DESC LIMIT 1"
    ).format(
        table=sql.Identifier(EVENTS),
        columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
        values=sql.SQL(", ").join(values.get(name, sql.Identifier(name)) for name in columns),
    )
    before = count(app_db, EVENTS)
    with app_db.transaction(force_rollback=True):
        try:
            inserted = app_db.execute(insert).rowcount
        except psycopg.errors.IntegrityError:
            # A constraint of a column added since: the privilege check had already passed.
            inserted = None
        else:
            assert count(app_db, EVENTS) == before + inserted
    assert inserted in {None, 1}


@pytest.mark.postgres_only
@pytest.mark.parametrize("table", [EVENTS, CHECKPOINTS])
def test_the_app_role_cannot_change_delete_or_unguard_audit_records(app_db, table):
    """UPDATE, DELETE, TRUNCATE, dropping or disabling the triggers, dropping the table: all
    refused to the app role, so that only someone holding the owner's credentials could try."""
    if not table_exists(table):
        pytest.skip(f"{table} does not exist in this version of the schema")
    rows, triggers = count(app_db, table), user_triggers(table)
    statements = rewriting_statements(table)
    if table == EVENTS:
        assert any(what.startswith("drop trigger") for what in statements)
    assert_refused(app_db, statements)
    assert (count(app_db, table), user_triggers(table)) == (rows, triggers)


@pytest.mark.postgres_only
def test_the_app_role_moves_chain_heads_but_never_removes_them(app_db):
    if not table_exists(CHAIN_HEADS):
        pytest.skip(f"{CHAIN_HEADS} does not exist in this version of the schema")
    granted = {
        privilege: app_db.execute(
            "SELECT has_table_privilege(%s, %s, %s)", [APP_ROLE, f"public.{CHAIN_HEADS}", privilege]
        ).fetchone()[0]
        for privilege in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
    }
    assert granted == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": True,
        "DELETE": False,
        "TRUNCATE": False,
    }
    statements = rewriting_statements(CHAIN_HEADS)
    assert_refused(
        app_db, {what: statements[what] for what in ("delete", "truncate", "drop table")}
    )


@pytest.mark.postgres_only
def test_the_app_role_owns_nothing_and_cannot_act_as_the_owner(app_db):
    owned = app_db.execute(
        "SELECT relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE "
        "rolname = %s) UNION ALL SELECT nspname FROM pg_namespace WHERE nspowner = "
        "(SELECT oid FROM pg_roles WHERE rolname = %s)",
        [APP_ROLE, APP_ROLE],
    ).fetchall()
    assert owned == []
    superuser, may_become_owner = app_db.execute(
        "SELECT rolsuper, pg_has_role(rolname, (SELECT tableowner FROM pg_tables "
        "WHERE tablename = %s), 'MEMBER') FROM pg_roles WHERE rolname = %s",
        [EVENTS, APP_ROLE],
    ).fetchone()
    assert (superuser, may_become_owner) == (False, False)


@pytest.mark.postgres_only
def test_the_app_role_may_read_and_write_every_other_table(app_db):
    """Only the audit tables are restricted: the rest of the app works as before."""
    denied = app_db.execute(
        "SELECT tablename, privilege FROM pg_tables, unnest(ARRAY['SELECT', 'INSERT', "
        "'UPDATE', 'DELETE']) AS privilege WHERE schemaname = 'public' "
        "AND tablename <> ALL(%s) AND NOT has_table_privilege(%s, "
        "format('public.%%I', tablename), privilege)",
        [[EVENTS, CHECKPOINTS, CHAIN_HEADS], APP_ROLE],
    ).fetchall()
    assert denied == []


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_owner_can_drop_and_recreate_the_triggers():
    """The owner's credentials can lift the triggers: tests use it to play such an attacker,
    which is why the app must never hold them."""
    before = user_triggers(EVENTS)
    assert before
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in db_triggers.drop_statements(connection.vendor):
            cursor.execute(statement)
        assert user_triggers(EVENTS) == []
        for statement in db_triggers.create_statements(connection.vendor):
            cursor.execute(statement)
    assert user_triggers(EVENTS) == before


def acl_snapshot() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, coalesce(relacl::text, '') FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'S', 'v') "
            "ORDER BY relname"
        )
        return cursor.fetchall()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_granting_again_changes_nothing():
    require_app_role()
    before = acl_snapshot()
    assert app_role_grant(connection=connection, role=APP_ROLE).ok
    assert app_role_grant(connection=connection, role=APP_ROLE).ok
    assert acl_snapshot() == before


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_missing_app_role_is_reported_not_fatal():
    before = acl_snapshot()
    grant = app_role_grant(connection=connection, role="simreg_no_such_role")
    assert not grant.ok
    assert "simreg_no_such_role does not exist" in grant.message
    assert acl_snapshot() == before


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_the_owner_is_never_made_the_app_role():
    """Privileges taken from the owner would mean nothing (it may grant them back) and would
    break its own maintenance: the grant refuses and says why."""
    before = acl_snapshot()
    grant = app_role_grant(connection=connection, role=connection.settings_dict["USER"])
    assert not grant.ok
    assert "owns tables" in grant.message
    assert acl_snapshot() == before


def test_migrations_use_the_owners_credentials():
    app = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "simreg_pool",
        "USER": "simreg_app",
        "PASSWORD": "app-secret",
        "HOST": "pgbouncer",
        "PORT": 6432,
        "OPTIONS": {"sslmode": "require"},
        "TEST": {"NAME": None},
    }
    owner = owner_settings_dict(
        current=app, owner_url="postgres://simreg:owner%40secret@db.internal:5432/simreg"
    )
    assert {key: owner[key] for key in ("USER", "PASSWORD", "HOST", "PORT", "NAME")} == {
        "USER": "simreg",
        "PASSWORD": "owner@secret",
        "HOST": "db.internal",
        "PORT": 5432,
        "NAME": "simreg",
    }
    assert owner["ENGINE"] == app["ENGINE"]
    assert owner["OPTIONS"] == app["OPTIONS"]
    assert app["USER"] == "simreg_app"


@pytest.mark.parametrize(
    ("test_name", "connected_to"), [(None, "test_simreg"), ("roles_ci", "roles_ci")]
)
def test_migrating_a_test_database_never_touches_the_real_one(test_name, connected_to):
    """The test runner points the connection at its test database before it migrates."""
    app = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": connected_to,
        "USER": "simreg_app",
        "PASSWORD": "app-secret",
        "HOST": "127.0.0.1",
        "PORT": 5432,
        "TEST": {"NAME": test_name},
    }
    owner = owner_settings_dict(current=app, owner_url="postgres://simreg:s@127.0.0.1:5432/simreg")
    assert (owner["USER"], owner["NAME"]) == ("simreg", connected_to)


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_migrate_runs_as_the_owner_while_the_app_connects_as_its_role(settings):
    """With MIGRATION_DATABASE_URL set, migrate connects as the owner, then hands the
    connection back to the app role."""
    require_app_role()
    owner = connection.settings_dict
    settings.MIGRATION_DATABASE_URL = (
        f"postgres://{quote(owner['USER'], safe='')}:{quote(owner['PASSWORD'], safe='')}"
        f"@{owner['HOST'] or 'localhost'}:{owner['PORT'] or 5432}/{quote(owner['NAME'])}"
    )
    migrating_as: set[str] = set()

    def record_role(*, using: str, **kwargs) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            migrating_as.add(cursor.fetchone()[0])

    connection.close()
    connection.settings_dict = {**owner, "USER": APP_ROLE, "PASSWORD": APP_PASSWORD}
    post_migrate.connect(record_role, weak=False, dispatch_uid=__name__)
    try:
        call_command("migrate", verbosity=0, interactive=False)
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            (app_afterwards,) = cursor.fetchone()
    finally:
        post_migrate.disconnect(dispatch_uid=__name__)
        connection.close()
        connection.settings_dict = owner
    assert migrating_as == {owner["USER"]}
    assert app_afterwards == APP_ROLE
