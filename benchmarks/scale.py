"""Operator-scale benchmark: seed a database with many registrations and audit events, then
measure the main pages (SQL queries and wall time per request) and show the query plans.

Usage (a database of its own; it is filled with synthetic data):

    DATABASE_URL=postgres://simreg:simreg@127.0.0.1:5432/simreg_bench \\
        .venv/bin/python benchmarks/scale.py --registrations 1000000 --events 1000000

Seeding copies the rows in with PostgreSQL COPY, in batches, and prints a progress line with
rows per second every 100,000 registrations. Run it again with --skip-seed to measure only.
Figures are printed, not asserted: timings belong here, not in the test suite.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simreg.settings")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django

django.setup()

from django.conf import settings  # noqa: E402

# Measured in-process with the test client: static URLs need no collected manifest.
settings.STORAGES = {
    **settings.STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

from datetime import timedelta  # noqa: E402

from django.core.management import call_command  # noqa: E402
from django.db import connection, reset_queries, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from benchmarks.audit_seed import seed_audit_events  # noqa: E402
from benchmarks.synthetic import reference_for  # noqa: E402
from registrations import roles, selectors  # noqa: E402
from registrations.crypto import blind_index, encrypt_text  # noqa: E402
from registrations.models import (  # noqa: E402
    AuditEvent,
    Person,
    Registration,
    Store,
    User,
)
from registrations.services import user_create_or_update  # noqa: E402
from registrations.validators import hkid_check_digit, luhn_check_digit  # noqa: E402

LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"
BATCH = 10_000


def iccid(n: int) -> str:
    body = f"898520{n:012d}"
    return body + luhn_check_digit(body)


def hkid(n: int) -> str:
    prefix = LETTERS[n % len(LETTERS)]
    digits = f"{n // len(LETTERS) % 1_000_000:06d}"
    return prefix + digits + hkid_check_digit(prefix, digits)


def reserve_ids(cursor, table: str, count: int) -> int:
    """Take `count` consecutive ids from the table's sequence and return the first, so that rows
    copied in with explicit ids never meet ids the sequence hands out later. The database is the
    benchmark's own, with nothing else writing to it while it is seeded."""
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [table])
    first = cursor.fetchone()[0]
    cursor.execute(
        "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [table, first + count - 1]
    )
    return first


def seed(registrations: int, events: int, stores: int) -> None:
    """Fill the database with PostgreSQL COPY, in batches of BATCH registrations: people,
    registrations and their history with ids taken from the sequences beforehand, then the
    audit events and the per-store status counts."""
    if connection.vendor != "postgresql":
        raise SystemExit("Seeding uses PostgreSQL COPY: point DATABASE_URL at PostgreSQL.")
    rng = random.Random(7)
    store_rows = [
        Store.objects.get_or_create(code=f"B{i:03d}", defaults={"name": f"Bench store {i}"})[0]
        for i in range(stores)
    ]
    staff = user_create_or_update(
        username="bench.counter",
        password="bench-password-1",
        roles=[roles.COUNTER_STAFF],
        stores=store_rows[:1],
    )
    user_create_or_update(
        username="bench.supervisor",
        password="bench-password-1",
        roles=[roles.SUPERVISOR],
        supervised_stores=store_rows[:5],
    )
    user_create_or_update(
        username="bench.compliance", password="bench-password-1", roles=[roles.COMPLIANCE_ADMIN]
    )
    # Every person gets its own encrypted document number and blind index. The other fields
    # hold the same synthetic values for everyone, so one ciphertext per value is made once and
    # copied into every row: each still decrypts with the configured keys (a Fernet token does
    # not depend on the row it sits in); only its random IV repeats, which is acceptable for
    # synthetic data and never done by the app itself.
    shared = {
        "name_en": encrypt_text("BENCH Person"),
        "name_zh": encrypt_text("測試人"),
        "date_of_birth": encrypt_text("1980-01-01"),
        "address": encrypt_text("1 Bench Road, Hong Kong"),
        "contact_number": encrypt_text("+85291234567"),
        "email": encrypt_text("bench@example.com"),
    }
    empty_comment = encrypt_text("")
    now = timezone.now()
    statuses = (
        ["approved"] * 90 + ["pending"] * 4 + ["draft"] * 2 + ["terminated"] * 3 + ["returned"]
    )
    start = Person.objects.count()
    t0 = time.perf_counter()
    reported = start
    with connection.cursor() as cursor:
        for first in range(start, registrations, BATCH):
            rows = range(first, min(first + BATCH, registrations))
            with transaction.atomic():
                person_id = reserve_ids(cursor, "registrations_person", len(rows))
                registration_id = reserve_ids(cursor, "registrations_registration", len(rows))
                with cursor.cursor.copy(
                    "COPY registrations_person (id, kind, document_type, document_number, "
                    "document_index, name_en, name_zh, date_of_birth, address, contact_number, "
                    "email, nationality) FROM STDIN"
                ) as copy:
                    for i, n in enumerate(rows):
                        number = hkid(n)
                        copy.write_row(
                            (
                                person_id + i,
                                "individual",
                                "hkid",
                                encrypt_text(number),
                                blind_index("hkid", number),
                                *shared.values(),
                                "HK",
                            )
                        )
                history_rows = []
                with cursor.cursor.copy(
                    "COPY registrations_registration (id, reference, store_id, created_by_id, "
                    "status, furthest_step, customer_id, original_sighted, sim_kind, iccid, eid, "
                    "msisdn, plan, channel, online_reference, declaration_accepted, "
                    "submitted_by_id, submitted_at, reviewer_id, decided_at, reason_code, comment, "
                    "terminated_at, created_at, updated_at) FROM STDIN"
                ) as copy:
                    for i, n in enumerate(rows):
                        status = rng.choice(statuses)
                        submitted = now - timedelta(minutes=rng.randint(1, 60 * 24 * 400))
                        decided = status in {"approved", "terminated", "returned"}
                        store_id = store_rows[n % stores].pk
                        if status != "draft":
                            history_rows.append((registration_id + i, store_id, submitted))
                        copy.write_row(
                            (
                                registration_id + i,
                                reference_for(n),
                                store_id,
                                staff.pk,
                                status,
                                3,
                                person_id + i,
                                True,
                                "physical",
                                iccid(n),
                                "",
                                f"+8529{n:07d}"[:12],
                                "prepaid" if n % 3 else "service_plan",
                                "counter",
                                "",
                                True,
                                staff.pk if status != "draft" else None,
                                submitted if status != "draft" else None,
                                staff.pk if decided else None,
                                submitted + timedelta(hours=3) if decided else None,
                                "other" if status == "returned" else "",
                                empty_comment,
                                submitted + timedelta(days=30) if status == "terminated" else None,
                                submitted,
                                submitted,
                            )
                        )
                # One history line per submission: the dashboard counts submissions per day.
                with cursor.cursor.copy(
                    "COPY registrations_statuschange (registration_id, store_id, from_status, "
                    "to_status, actor_id, at, reason_code, comment) FROM STDIN"
                ) as copy:
                    for reg_id, store_id, at in history_rows:
                        copy.write_row(
                            (reg_id, store_id, "draft", "pending", staff.pk, at, "", empty_comment)
                        )
            done = rows.stop
            if done // 100_000 > reported // 100_000 or done == registrations:
                elapsed = time.perf_counter() - t0
                print(
                    f"  registrations: {done:>9,} ({elapsed:.0f} s, "
                    f"{(done - start) / elapsed:,.0f} rows/s)",
                    flush=True,
                )
                reported = done

    print(f"  audit events: spread over the chains of {stores} stores", flush=True)
    seed_audit_events(
        count=events - AuditEvent.objects.count(),
        store_codes=[store.code for store in store_rows],
        actor=staff,
        reference_for=lambda n: reference_for(n % max(registrations, 1)),
    )
    with connection.cursor() as cursor:
        # The rows went in behind the services' back: count them per store and status the way
        # the services keep the counts (StoreStatusCount), in one statement.
        cursor.execute("DELETE FROM registrations_storestatuscount")
        cursor.execute(
            "INSERT INTO registrations_storestatuscount (store_id, status, count) "
            "SELECT store_id, status, COUNT(*) FROM registrations_registration "
            "GROUP BY store_id, status"
        )
        if connection.vendor == "postgresql":
            # What autovacuum does in production: statistics and the visibility map.
            cursor.execute("VACUUM ANALYZE")


def measure(client: Client, label: str, method: str, path: str, data=None, runs: int = 7) -> None:
    timings, queries = [], 0
    for _ in range(runs):
        reset_queries()
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            response = getattr(client, method)(path, data or {})
            timings.append((time.perf_counter() - t0) * 1000)
        queries = len(captured)
        assert response.status_code in {200, 302}, (label, response.status_code)
    print(
        f"  {label:<44} {response.status_code}  queries={queries:>3}  "
        f"median={statistics.median(timings):7.1f} ms  max={max(timings):7.1f} ms"
    )


def explain(sql: str, params: list) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY ON) " + sql, params)
        plan = [row[0] for row in cursor.fetchall()]
    print("    " + "\n    ".join(line for line in plan if line.strip()))


def sign_in(client: Client, username: str) -> User:
    """Sign in as the user, with the second factor passed (a confirmed authenticator), as the
    supervisor's and the compliance admin's pages require."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = User.objects.get(username=username)
    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="benchmark", defaults={"confirmed": True}
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return user


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--registrations", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--stores", type=int, default=50)
    parser.add_argument("--skip-seed", action="store_true")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    if not args.skip_seed:
        print(f"Seeding {args.registrations:,} registrations, {args.events:,} audit events")
        seed(args.registrations, args.events, args.stores)
    print(
        f"Database: {connection.vendor}; registrations={Registration.objects.count():,}; "
        f"audit events={AuditEvent.objects.count():,}"
    )
    client = Client()
    sample = hkid(args.registrations // 2)
    # The copied rows read back through the models: the person decrypts and the blind index
    # finds it.
    found = Person.objects.get(document_type="hkid", document_index=blind_index("hkid", sample))
    assert found.document_number == sample and found.registration.customer_id == found.pk
    print(f"Person #{found.pk} decrypts: {found.document_number}, {found.name_en}")

    client.force_login(User.objects.get(username="bench.counter"))
    measure(client, "counter home", "get", "/")
    measure(
        client,
        "find by document number (POST)",
        "post",
        "/counter/find/",
        {"by": "document", "document_type": "hkid", "document_number": sample},
    )
    sign_in(client, "bench.supervisor")
    measure(client, "supervisor home", "get", "/")
    measure(client, "review queue, page 1", "get", "/review/")
    # A later page by keyset: page 40, or the last page of a shorter queue, from the cursor of
    # the record before it (found once, not measured).
    supervisor = User.objects.get(username="bench.supervisor")
    queue = selectors.review_queue_for(user=supervisor)
    later = min(39, (queue.count() - 1) // 25)
    if later > 0:
        cursor = selectors.review_queue_cursor(queue[later * 25 - 1])
        measure(client, f"review queue, page {later + 1}", "get", f"/review/?after={cursor}")
    measure(client, "review queue, filtered (store, eSIM)", "get", "/review/?sim_kind=esim")
    measure(client, "dashboard", "get", "/review/dashboard/")
    supervisor = User.objects.get(username="bench.supervisor")
    pending = (
        Registration.objects.filter(status="pending", store__in=supervisor.supervised_stores.all())
        .values_list("reference", flat=True)
        .first()
    )
    measure(client, "review detail", "get", f"/review/{pending}/")
    sign_in(client, "bench.compliance")
    measure(client, "audit log, newest page", "get", "/compliance/audit/")
    measure(client, "audit log, filtered by action", "get", "/compliance/audit/?action=viewed")
    measure(
        client,
        "audit log, filtered by record",
        "get",
        f"/compliance/audit/?reference={reference_for(args.registrations // 3)}",
    )

    print("\nQuery plans (PostgreSQL):")
    print("  blind-index look-up:")
    explain(
        "SELECT r.id FROM registrations_registration r JOIN registrations_person p "
        "ON p.id = r.customer_id WHERE p.document_type = %s AND p.document_index = %s",
        ["hkid", blind_index("hkid", sample)],
    )
    print("  per-person limit count candidates:")
    explain(
        "SELECT r.id FROM registrations_registration r JOIN registrations_person p "
        "ON p.id = r.customer_id WHERE r.status IN ('pending','returned','approved') "
        "AND r.plan = 'prepaid' AND p.document_type = %s AND p.document_index = %s",
        ["hkid", blind_index("hkid", sample)],
    )
    print("  review queue page:")
    explain(
        "SELECT id FROM registrations_registration WHERE status = 'pending' AND store_id IN "
        "(SELECT store_id FROM registrations_user_supervised_stores WHERE user_id = %s) "
        "ORDER BY submitted_at, id LIMIT 25",
        [User.objects.get(username="bench.supervisor").pk],
    )


if __name__ == "__main__":
    main()
