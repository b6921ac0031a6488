"""The audit log at operator scale: appends per second with 1 to 8 writers, whole counter flows
per second, and the speed (and memory) of verifying and exporting a million events.

Usage (PostgreSQL on this machine; a database of its own, which the script creates when it is
missing and migrates; the keys come from the environment or .env, as for the app: `make keys`):

    DATABASE_URL=postgres://simreg:simreg@127.0.0.1:5432/simreg_bench_audit \\
        .venv/bin/python benchmarks/audit_appends.py --events 1000000 --seconds 5

--writers 1,2,4,8 sets the numbers of writer processes; --only appends|flows|verify runs one
part; --skip-seed measures verification on the events already there. Run it on a quiet machine.

1. Appends: each writer is an OS process with its own connection, appending one event per
   transaction (autocommit, like a page view's event) through `audit_record` for --seconds,
   all starting at the same moment; writers in distinct stores (whose chains differ), then all
   in one store. Each run is repeated, side by side, the way the previous design appended: in
   a transaction that first takes one advisory lock global to the operator.
2. Flows: whole counter registrations through the services (draft, document copy, materials,
   channel, identity, submit), one worker process per store, then all in one store. Document
   copies go to a temporary folder, removed at the end.
3. Verification (`chains_verify`) and export (JSONL, CSV) over at least --events events, seeded
   fast beforehand (benchmarks/audit_seed.py), each in a fresh process so that its peak memory
   is its own; with the temporary files the server wrote meanwhile, and, for comparison, the
   verification once more inside one transaction.

After every run, each chain is checked from where it stood before the run (every new event,
link and hash, and the head), and the number of new events must equal what the workers
reported; each part ends with `audit_chain_check` over the whole log. Figures are printed, not
asserted; the exit status is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import multiprocessing
import os
import queue
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simreg.settings")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

import django

# Every process runs this: the writers are started with 'spawn' and import this module afresh.
django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.db.models import Max  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from psycopg import sql  # noqa: E402

from benchmarks.audit_seed import seed_audit_events  # noqa: E402
from benchmarks.synthetic import reference_for  # noqa: E402
from registrations import roles, services  # noqa: E402
from registrations.audit import (  # noqa: E402
    CSV,
    GENESIS_HASH,
    JSONL,
    AuditExport,
    AuditFilters,
    Origin,
    audit_chain_check,
    audit_record,
    checkpoint_seal,
    event_hash,
)
from registrations.audit.chain import chain_for  # noqa: E402
from registrations.audit.verification import PROGRESS_EVERY, chains_verify  # noqa: E402
from registrations.documents import CheckedUpload  # noqa: E402
from registrations.models import (  # noqa: E402
    AuditChain,
    AuditEvent,
    DocumentCopy,
    Registration,
    Store,
    User,
)
from registrations.validators import hkid_check_digit, luhn_check_digit  # noqa: E402

# The advisory lock every audited action took before the log had independent chains.
PREVIOUS_GLOBAL_LOCK = 0x51_6D_72_65_67_41_75_64
ORIGIN = Origin(ip="10.0.0.1", user_agent="bench")
BENCH_USER = "bench.counter"
# Seeded events are spread over this many synthetic stores (an operator has hundreds).
SEED_STORES = 200
# Bounds on one run, whatever --seconds says.
MAX_APPENDS_PER_WRITER = 2_000_000
MAX_FLOWS_PER_WORKER = 200_000
# Writers are told to start this long after the command is sent, all at the same moment.
START_DELAY = 1.0
LOOPBACK = {"localhost", "127.0.0.1", "::1", ""}

# The smallest PNG that passes the content check.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
LETTERS = "ABCDEFGHJKLMNPRSTVWXYZ"
# Hong Kong mobile prefixes whose every 8-digit number is valid: a flow's serial number picks
# one number among them, so that no two flows ever clash.
MOBILE_PREFIXES = ("61", "63", "64", "65", "69", "94", "96", "97")
SERIALS = len(MOBILE_PREFIXES) * 1_000_000
ICCID_PREFIX = "898520"

problems: list[str] = []


def problem(text: str) -> None:
    problems.append(text)
    print(f"  *** {text}", flush=True)


# Synthetic values ---------------------------------------------------------------------------


def iccid_for(serial: int) -> str:
    body = f"{ICCID_PREFIX}{serial:012d}"
    return body + luhn_check_digit(body)


def msisdn_for(serial: int) -> str:
    prefix, number = divmod(serial, 1_000_000)
    return f"{MOBILE_PREFIXES[prefix]}{number:06d}"


def hkid_for(serial: int) -> str:
    prefix = LETTERS[serial % len(LETTERS)]
    digits = f"{serial // len(LETTERS) % 1_000_000:06d}"
    return f"{prefix}{digits}({hkid_check_digit(prefix, digits)})"


# Memory --------------------------------------------------------------------------------------


def memory_kb(field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in kB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class MemoryWatch:
    """Peak memory of a streaming operation: the growth from its start, and the growth after
    its first tenth, which stays near zero when memory does not grow with the data."""

    def __init__(self, total: int) -> None:
        self.total = max(total, 1)
        self.start_hwm = memory_kb("VmHWM")
        self.start_rss = memory_kb("VmRSS")
        self.tenth_rss: int | None = None
        self.late_peak = 0

    def sample(self, done: int) -> None:
        rss = memory_kb("VmRSS")
        if self.tenth_rss is None:
            if done * 10 >= self.total:
                self.tenth_rss = rss
        else:
            self.late_peak = max(self.late_peak, rss)

    def result(self) -> dict:
        end_hwm = memory_kb("VmHWM")
        tenth = self.tenth_rss or self.start_rss
        return {
            "rss_start_mb": self.start_rss / 1024,
            "hwm_growth_mb": (end_hwm - max(self.start_hwm, self.start_rss)) / 1024,
            "late_growth_mb": max(0, self.late_peak - tenth) / 1024,
        }


# Database ------------------------------------------------------------------------------------


def database_ensure() -> None:
    """Refuse anything but PostgreSQL on this machine; create the database when missing."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("This benchmark needs PostgreSQL: set DATABASE_URL (see the docstring).")
    host = db.get("HOST") or ""
    if host not in LOOPBACK and not host.startswith("/"):
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            sys.exit(f"Refusing a database on another machine ({host}): loopback only.")
    params = {
        "host": host or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        exists = admin.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
        ).fetchone()
        if not exists:
            print(f"Creating database {db['NAME']}")
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))


def distinct_chain_stores(count: int) -> list[str]:
    """Store codes whose chains all differ, so that distinct stores never share a chain."""
    codes, chains = [], set()
    n = 0
    while len(codes) < count and n < 100_000:
        code = f"BA{n:03d}"
        chain = chain_for(store_code=code, actor_id=None, chains=settings.AUDIT_CHAINS)
        if chain not in chains:
            codes.append(code)
            chains.add(chain)
        n += 1
    return codes


@dataclass
class Bench:
    user: User
    stores: list[Store]
    # One draft per store: the record the appended "viewed" events name.
    records: list[str]


def bench_prepare(writers: int) -> Bench:
    codes = distinct_chain_stores(writers)
    if len(codes) < writers:
        print(f"  (only {settings.AUDIT_CHAINS} chains: some writers' stores share a chain)")
        codes += [f"BB{n:03d}" for n in range(writers - len(codes))]
    stores = [
        Store.objects.filter(code=code).first()
        or services.store_create_or_update(code=code, name=f"Bench store {code}")
        for code in codes
    ]
    user = User.objects.filter(username=BENCH_USER).first()
    if user is None or set(user.stores.values_list("code", flat=True)) != set(codes):
        user = services.user_create_or_update(
            username=BENCH_USER,
            password="bench-password-1",
            roles=[roles.COUNTER_STAFF],
            stores=stores,
        )
    records = [
        services.registration_create_draft(store=store, actor=user, origin=ORIGIN).reference
        for store in stores
    ]
    return Bench(user=user, stores=stores, records=records)


Heads = dict[int, tuple[int, str]]


def heads_now() -> Heads:
    return {
        chain: (seq, hash_)
        for chain, seq, hash_ in AuditChain.objects.values_list("chain", "seq", "hash")
    }


def chains_check_since(before: Heads) -> tuple[int, list[str]]:
    """Check every event appended since `before` (each chain's head then): positions without a
    gap, each link, each hash recomputed, and the head row on the last event."""
    found: list[str] = []
    checked = 0
    after = heads_now()
    for chain in sorted(set(before) - set(after)):
        found.append(f"chain {chain}: its head row disappeared")
    for chain, (head_seq, head_hash) in sorted(after.items()):
        seq, prev = before.get(chain, (0, GENESIS_HASH))
        if head_seq < seq:
            found.append(f"chain {chain}: went back from position {seq} to {head_seq}")
            continue
        events = (
            AuditEvent.objects.filter(chain=chain, seq__gt=seq)
            .order_by("seq")
            .iterator(chunk_size=2000)
        )
        for event in events:
            if event.seq != seq + 1:
                found.append(f"chain {chain}: position {seq + 1} missing (found {event.seq})")
                break
            if event.prev_hash != prev:
                found.append(f"chain {chain} position {event.seq}: does not link")
                break
            if event_hash(event) != event.hash:
                found.append(f"chain {chain} position {event.seq}: hash does not match")
                break
            seq, prev = event.seq, event.hash
            checked += 1
        else:
            if (seq, prev) != (head_seq, head_hash):
                found.append(f"chain {chain}: head at {head_seq}, last event at {seq}")
    return checked, found


def whole_log_check(label: str) -> None:
    """Seal the heads as the job worker does, then `audit_chain_check` over the whole log."""
    checkpoint_seal()
    t0 = time.perf_counter()
    check = audit_chain_check(actor=None, origin=ORIGIN)
    elapsed = time.perf_counter() - t0
    state = "intact" if check.ok else "NOT INTACT"
    print(
        f"  audit_chain_check after {label}: {state}; {check.chain.checked:,} events in "
        f"{check.chain.chains} chains, {check.checkpoints.checked} checkpoints, "
        f"{check.unsealed} unsealed ({elapsed:.1f} s)",
        flush=True,
    )
    if not check.ok:
        for line in check.problems[:10]:
            problem(f"audit_chain_check after {label}: {line}")


# Worker processes ----------------------------------------------------------------------------


def wait_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def summary_ms(latencies: list[float]) -> dict:
    if not latencies:
        return {"median_ms": None, "p99_ms": None}
    ordered = sorted(latencies)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
    }


def append_once(*, user: User, record: Registration, locked: bool) -> None:
    if not locked:
        audit_record(
            actor=user, action=AuditEvent.Action.VIEWED, origin=ORIGIN, registration=record
        )
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PREVIOUS_GLOBAL_LOCK])
        audit_record(
            actor=user, action=AuditEvent.Action.VIEWED, origin=ORIGIN, registration=record
        )


def run_appends(*, record: str, locked: bool, start_at: float, seconds: float) -> dict:
    user = User.objects.get(username=BENCH_USER)
    registration = Registration.objects.select_related("store").get(reference=record)
    latencies: list[float] = []
    errors, first_error = 0, ""
    wait_until(start_at)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while len(latencies) < MAX_APPENDS_PER_WRITER:
        began = time.perf_counter()
        if began >= deadline:
            break
        try:
            append_once(user=user, record=registration, locked=locked)
        except Exception as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            if errors >= 100:
                break
            continue
        latencies.append(time.perf_counter() - began)
    return {
        "count": len(latencies),
        "events": len(latencies),
        "elapsed": time.perf_counter() - t0,
        "errors": errors,
        "first_error": first_error,
        **summary_ms(latencies),
    }


def flow_once(*, store: Store, user: User, serial: int, wrote: Callable[[], None]) -> None:
    """One whole registration at the counter. Each service commits on its own and writes one
    audit event: `wrote` is called after each, so a flow that fails half-way is counted too."""
    registration = services.registration_create_draft(store=store, actor=user, origin=ORIGIN)
    wrote()
    services.document_copy_store(
        registration=registration,
        kind=DocumentCopy.Kind.IDENTITY,
        upload=CheckedUpload(data=PNG, content_type="image/png"),
        actor=user,
        origin=ORIGIN,
    )
    wrote()
    registration = services.registration_save_materials(
        registration=registration,
        actor=user,
        origin=ORIGIN,
        materials=services.MaterialsDetails(
            customer_kind="individual",
            document_type="hkid",
            original_sighted=True,
            sim_kind=Registration.SimKind.PHYSICAL,
            iccid=iccid_for(serial),
            msisdn=msisdn_for(serial),
            plan=Registration.Plan.PREPAID,
        ),
    )
    wrote()
    registration = services.registration_save_channel(
        registration=registration, actor=user, origin=ORIGIN, channel=Registration.Channel.COUNTER
    )
    wrote()
    registration = services.registration_save_identity(
        registration=registration,
        actor=user,
        origin=ORIGIN,
        identity=services.IdentityDetails(
            name_en="BENCH Person",
            name_zh="測試人",
            document_number=hkid_for(serial),
            date_of_birth=datetime.date(1980, 1, 1),
            nationality="HK",
            address="1 Bench Road, Hong Kong",
            contact_number=msisdn_for(serial),
            email="bench@example.com",
        ),
    )
    wrote()
    services.registration_submit(
        registration=registration, actor=user, origin=ORIGIN, declaration_accepted=True
    )
    wrote()


def run_flows(
    *,
    store_code: str,
    first_serial: int,
    stride: int,
    storage: str,
    start_at: float,
    seconds: float,
) -> dict:
    settings.PRIVATE_STORAGE_ROOT = Path(storage)
    user = User.objects.get(username=BENCH_USER)
    store = Store.objects.get(code=store_code)
    latencies: list[float] = []
    events = [0]
    errors = 0
    first_error = ""
    serial = first_serial

    def wrote() -> None:
        events[0] += 1

    wait_until(start_at)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while len(latencies) + errors < MAX_FLOWS_PER_WORKER and serial < SERIALS:
        began = time.perf_counter()
        if began >= deadline:
            break
        try:
            flow_once(store=store, user=user, serial=serial, wrote=wrote)
        except Exception as exc:
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {exc}"
            if errors >= 20:
                break
        else:
            latencies.append(time.perf_counter() - began)
        serial += stride
    return {
        "count": len(latencies),
        "events": events[0],
        "elapsed": time.perf_counter() - t0,
        "errors": errors,
        "first_error": first_error,
        **summary_ms(latencies),
    }


RUNNERS = {"appends": run_appends, "flows": run_flows}


def worker_main(index: int, commands, results) -> None:
    """A writer process: its own connection, kept for every run it is given."""
    try:
        connection.ensure_connection()
        while (command := commands.get()) is not None:
            kind, params = command
            try:
                result = RUNNERS[kind](**params)
            except Exception as exc:
                result = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
            results.put((index, result))
    finally:
        connections.close_all()


def collect(results, processes: list, count: int) -> list:
    """`count` results from the queue; an error result for each process that died first."""
    collected: list = []
    while len(collected) < count:
        try:
            collected.append(results.get(timeout=5))
        except queue.Empty:
            dead = [p for p in processes if not p.is_alive()]
            if dead and results.empty():
                error = {"error": f"a process exited with code {dead[0].exitcode}", "trace": ""}
                return collected + [(i, error) for i in range(len(collected), count)]
    return collected


class WorkerPool:
    def __init__(self, size: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.results = context.Queue()
        self.commands = [context.Queue() for _ in range(size)]
        self.processes = [
            context.Process(target=worker_main, args=(i, self.commands[i], self.results))
            for i in range(size)
        ]
        for process in self.processes:
            process.start()

    def run(self, kind: str, params: list[dict], seconds: float) -> list[dict]:
        """Give each of the first len(params) workers its run; they all start at one moment."""
        start_at = time.time() + START_DELAY
        for i, run_params in enumerate(params):
            self.commands[i].put((kind, {**run_params, "start_at": start_at, "seconds": seconds}))
        results = dict(collect(self.results, self.processes[: len(params)], len(params)))
        return [results[i] for i in range(len(params))]

    def close(self) -> None:
        for commands in self.commands:
            commands.put(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()


@dataclass
class Outcome:
    rate: float
    total: int
    errors: int
    median_ms: float | None
    p99_ms: float | None


def measured_run(pool: WorkerPool, kind: str, params: list[dict], seconds: float, label: str):
    """One run, then the checks: every new event chained, none lost."""
    count_before = AuditEvent.objects.count()
    before = heads_now()
    results = pool.run(kind, params, seconds)
    failed = [r for r in results if "error" in r]
    for result in failed:
        problem(f"{label}: a worker failed: {result['error']}")
        print(result["trace"])
    results = [r for r in results if "error" not in r]
    total = sum(r["count"] for r in results)
    events = sum(r["events"] for r in results)
    errors = sum(r["errors"] for r in results)
    for result in results:
        if result["first_error"]:
            problem(f"{label}: {result['errors']} errors, first: {result['first_error']}")
    elapsed = max((r["elapsed"] for r in results), default=seconds)
    new_events = AuditEvent.objects.count() - count_before
    checked, found = chains_check_since(before)
    if new_events != events:
        problem(f"{label}: {new_events} new events, workers reported {events}")
    for line in found:
        problem(f"{label}: {line}")
    medians = [r["median_ms"] for r in results if r["median_ms"] is not None]
    p99s = [r["p99_ms"] for r in results if r["p99_ms"] is not None]
    intact = "intact" if not found and checked == new_events else "CHECK FAILED"
    print(
        f"    {label:<44} {total / elapsed:>9,.1f}/s  ({total:,} in {elapsed:.1f} s; "
        f"{new_events:,} new events, {checked:,} checked: {intact})",
        flush=True,
    )
    if checked != new_events and not found:
        problem(f"{label}: {checked} events checked, {new_events} new")
    return Outcome(
        rate=total / elapsed,
        total=total,
        errors=errors,
        median_ms=statistics.median(medians) if medians else None,
        p99_ms=max(p99s) if p99s else None,
    )


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# The parts -----------------------------------------------------------------------------------


def append_round_trips(bench: Bench) -> None:
    record = Registration.objects.select_related("store").get(reference=bench.records[0])
    for locked, label in ((False, "one append (autocommit)"), (True, "one append, global lock")):
        append_once(user=bench.user, record=record, locked=locked)  # warm
        with CaptureQueriesContext(connection) as captured:
            append_once(user=bench.user, record=record, locked=locked)
        statements = [query["sql"].split()[0].upper() for query in captured]
        print(f"  {label}: {len(captured)} round trips ({', '.join(statements)})")
        if not locked and len(captured) != 1:
            problem(f"an append took {len(captured)} round trips on PostgreSQL, not 1")


def part_appends(pool: WorkerPool, bench: Bench, writers: list[int], seconds: float) -> None:
    print(f"\n1. Appends through audit_record, one event per transaction, {seconds:g} s a run")
    append_round_trips(bench)
    table = []
    for placement in ("distinct stores", "one store"):
        for n in writers:
            records = (
                bench.records[:n] if placement == "distinct stores" else [bench.records[0]] * n
            )
            row = {}
            for locked in (False, True):
                design = "global lock" if locked else "chains"
                params = [{"record": record, "locked": locked} for record in records]
                row[design] = measured_run(
                    pool, "appends", params, seconds, f"{n} writer(s), {placement}, {design}"
                )
            table.append((n, placement, row))
    print(
        "\n  writers  placement          chains/s  global lock/s  ratio   "
        "median ms (chains | lock)   p99 ms (chains | lock)"
    )
    for n, placement, row in table:
        chains, lock = row["chains"], row["global lock"]
        ratio = chains.rate / lock.rate if lock.rate else float("nan")
        print(
            f"  {n:>7}  {placement:<16} {chains.rate:>9,.0f}  {lock.rate:>13,.0f}  {ratio:>5.2f}"
            f"   {fmt_ms(chains.median_ms):>8} | {fmt_ms(lock.median_ms):<8}"
            f"       {fmt_ms(chains.p99_ms):>8} | {fmt_ms(lock.p99_ms):<8}"
        )
    one = next((row for n, placement, row in table if n == 1), None)
    if one:
        print(
            f"  one writer, median latency of one append: {fmt_ms(one['chains'].median_ms)} ms "
            f"(global lock: {fmt_ms(one['global lock'].median_ms)} ms)"
        )
    whole_log_check("the append runs")


def next_serial() -> int:
    """The first serial no earlier flow used (serials are found back from the ICCIDs)."""
    last = (
        Registration.objects.filter(iccid__startswith=ICCID_PREFIX, iccid__regex=r"^[0-9]{19}$")
        .aggregate(last=Max("iccid"))
        .get("last")
    )
    return int(last[len(ICCID_PREFIX) : -1]) + 1 if last else 0


def part_flows(
    pool: WorkerPool, bench: Bench, writers: list[int], seconds: float, storage: Path
) -> None:
    print(
        f"\n2. Whole counter flows through the services (draft, document copy, materials, "
        f"channel, identity, submit: 6 events each), {seconds:g} s a run"
    )
    table = []
    for placement in ("distinct stores", "one store"):
        for n in writers:
            first = next_serial()
            stores = bench.stores[:n] if placement == "distinct stores" else [bench.stores[0]] * n
            params = [
                {
                    "store_code": store.code,
                    "first_serial": first + i,
                    "stride": n,
                    "storage": str(storage),
                }
                for i, store in enumerate(stores)
            ]
            outcome = measured_run(pool, "flows", params, seconds, f"{n} worker(s), {placement}")
            table.append((n, placement, outcome))
    print("\n  workers  placement           flows/s  events/s  median flow ms  p99 ms  errors")
    for n, placement, outcome in table:
        print(
            f"  {n:>7}  {placement:<16} {outcome.rate:>9,.1f}  {outcome.rate * 6:>8,.0f}"
            f"  {fmt_ms(outcome.median_ms):>14}  {fmt_ms(outcome.p99_ms):>6}  {outcome.errors:>6}"
        )
    whole_log_check("the flow runs")


def measure_child(operation: str, total: int, results) -> None:
    """In a fresh process, so that its peak memory is this operation's alone."""
    try:
        connection.ensure_connection()
        AuditEvent.objects.exists()
        watch = MemoryWatch(total)
        t0 = time.perf_counter()
        outcome: dict = {}
        if operation in ("verify", "verify-atomic"):
            first: list[float] = []

            def progress(done: int, _total: int) -> None:
                watch.sample(done)
                if not first:
                    first.append(time.perf_counter() - t0)

            if operation == "verify":
                report, _ends = chains_verify(progress=progress)
            else:
                with transaction.atomic():
                    report, _ends = chains_verify(progress=progress)
            outcome = {
                "events": report.checked,
                "ok": report.ok,
                "problem": report.problem,
                "first_label": f"first {PROGRESS_EVERY:,} events",
                "first": first[0] if first else None,
            }
        else:
            export = AuditExport(filters=AuditFilters(), fmt=operation)
            size, first_chunk = 0, None
            for number, chunk in enumerate(export.chunks(), start=1):
                if first_chunk is None:
                    first_chunk = time.perf_counter() - t0
                size += len(chunk)
                if number % 16 == 0:
                    watch.sample(export.rows)
            outcome = {
                "events": export.rows,
                "ok": True,
                "bytes": size,
                "first_label": "first chunk",
                "first": first_chunk,
            }
        outcome["seconds"] = time.perf_counter() - t0
        outcome.update(watch.result())
        results.put((0, outcome))
    except Exception as exc:
        error = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        results.put((0, error))
    finally:
        connections.close_all()


def part_verify(events: int) -> None:
    print(f"\n3. Verification and export over at least {events:,} events")
    total = AuditEvent.objects.count()
    if total < events:
        print(f"  (the log holds {total:,} events: fewer than --events)")
    context = multiprocessing.get_context("spawn")
    print(
        "  (each in a fresh process, as `verify_audit` and `export_audit` run it: autocommit; "
        "then chains_verify once more inside one transaction, for comparison)"
    )
    for operation, label in (
        ("verify", "chains_verify"),
        (JSONL, "export JSONL"),
        (CSV, "export CSV"),
        ("verify-atomic", "chains_verify in one transaction"),
    ):
        temp_before = server_temp_bytes()
        results = context.Queue()
        child = context.Process(target=measure_child, args=(operation, total, results))
        child.start()
        outcome = collect(results, [child], 1)[0][1]
        child.join()
        if "error" in outcome:
            problem(f"{label} failed: {outcome['error']}")
            print(outcome["trace"])
            continue
        if not outcome["ok"]:
            problem(f"{label}: the log is not intact: {outcome['problem']}")
        temp_mb = (server_temp_bytes(settled=True) - temp_before) / 2**20
        late = outcome["late_growth_mb"]
        size = f"; {outcome['bytes'] / 2**20:,.0f} MB written" if "bytes" in outcome else ""
        first = (
            f"; {outcome['first_label']} after {outcome['first']:.1f} s"
            if outcome.get("first")
            else ""
        )
        print(
            f"  {label}: {outcome['events']:,} events in {outcome['seconds']:.1f} s: "
            f"{outcome['events'] / outcome['seconds']:,.0f} events/s{size}{first}\n"
            f"    peak RSS +{outcome['hwm_growth_mb']:.1f} MB (from "
            f"{outcome['rss_start_mb']:.0f} MB), +{late:.1f} MB after the first tenth: memory "
            f"{'flat' if late < 8 else 'GROWS'}; server temporary files {temp_mb:,.0f} MB",
            flush=True,
        )
    whole_log_check("verification and export")


def server_temp_bytes(*, settled: bool = False) -> int:
    """What PostgreSQL wrote to temporary files for this database so far. A cursor that keeps
    its rows past its transaction (Django's iterator() in autocommit: WITH HOLD) writes the whole
    result there before the first row. With `settled`, wait until a closed session's figures
    have been counted."""

    def read() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT temp_bytes FROM pg_stat_database WHERE datname = current_database()"
            )
            return int(cursor.fetchone()[0])

    value = read()
    for _ in range(10 if settled else 0):
        time.sleep(0.5)
        value, previous = read(), value
        if value == previous:
            break
    return value


def seed(count: int) -> None:
    print(f"  seeding {count:,} events over {SEED_STORES} stores' chains")
    user = User.objects.get(username=BENCH_USER)
    t0 = time.perf_counter()
    seed_audit_events(
        count=count,
        store_codes=[f"S{i:03d}" for i in range(SEED_STORES)],
        actor=user,
        reference_for=reference_for,
    )
    seeded = time.perf_counter() - t0
    with connection.cursor() as cursor:
        # What autovacuum does in production: statistics and the visibility map.
        cursor.execute(f"VACUUM (ANALYZE) {AuditEvent._meta.db_table}")
    print(
        f"  seeded {count:,} events in {seeded:.1f} s ({count / seeded:,.0f}/s), "
        f"then VACUUM ANALYZE ({time.perf_counter() - t0 - seeded:.1f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", default="1,2,4,8")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--only", choices=("appends", "flows", "verify"))
    args = parser.parse_args()
    writers = sorted({int(n) for n in args.writers.split(",") if n.strip()})
    if not writers or writers[0] < 1 or writers[-1] > 64:
        parser.error("--writers takes numbers from 1 to 64, e.g. 1,2,4,8")
    if not 0 < args.seconds <= 600:
        parser.error("--seconds must be more than 0 and at most 600")
    parts = [args.only] if args.only else ["appends", "flows", "verify"]

    database_ensure()
    call_command("migrate", verbosity=0)
    bench = bench_prepare(max(writers))
    print(
        f"Database {settings.DATABASES['default']['NAME']} (PostgreSQL "
        f"{connection.pg_version // 10000}); {AuditEvent.objects.count():,} audit events; "
        f"{settings.AUDIT_CHAINS} chains; {os.cpu_count()} CPUs; writers {writers}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN ("
            "'synchronous_commit', "
            "'fsync', 'wal_sync_method', 'commit_delay', 'shared_buffers', 'work_mem') "
            "ORDER BY name"
        )
        print("  " + "; ".join(f"{name}={value}" for name, value in cursor))
    print(
        "  distinct stores: "
        + ", ".join(
            f"{store.code} (chain "
            f"{chain_for(store_code=store.code, actor_id=None, chains=settings.AUDIT_CHAINS)})"
            for store in bench.stores
        )
    )
    storage = Path(tempfile.mkdtemp(prefix="simreg-bench-"))
    connections.close_all()
    pool = WorkerPool(max(writers)) if {"appends", "flows"} & set(parts) else None
    try:
        if "verify" in parts and not args.skip_seed:
            total = AuditEvent.objects.count()
            if total < args.events:
                print()
                seed(args.events - total)
        if "appends" in parts:
            part_appends(pool, bench, writers, args.seconds)
        if "flows" in parts:
            part_flows(pool, bench, writers, args.seconds, storage)
        if "verify" in parts:
            part_verify(args.events)
    finally:
        if pool is not None:
            pool.close()
        shutil.rmtree(storage, ignore_errors=True)
    if problems:
        print(f"\n{len(problems)} check(s) failed:")
        for line in problems:
            print(f"  {line}")
        sys.exit(1)
    print("\nEvery check passed: every chain intact, no event lost.")


if __name__ == "__main__":
    main()
