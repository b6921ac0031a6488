"""Load benchmark of a running production stack (`make serve`) on loopback, every role at once.

Virtual users of every role sign in through the real pages and work a weighted mix of pages for
a bounded time.

Usage, with the stack running against the database to measure, e.g. one that
benchmarks/scale.py filled (`DATABASE_URL=... make serve` in another terminal), from the
repository root, with the same DATABASE_URL and keys (.env) as the server:

    DATABASE_URL=postgres://simreg:simreg@127.0.0.1:5432/simreg_bench \\
        .venv/bin/python benchmarks/load.py --url http://127.0.0.1:8000 --clients 8 --seconds 60

    # the figures as JSON too (to a file, or "-" for standard output instead of the table)
    ... benchmarks/load.py --clients 8 --seconds 60 --json var/load.json

Before the clock starts, the benchmark prepares in-process, through Django and the services:
users `load.counter.N`, `load.supervisor.N` and `load.compliance.N` for N = 1..--clients (made
once, with the password of --password; counter staff at the first --stores stores by code,
supervisors of all of them), an authenticator for each supervisor and compliance admin whose key
is derived from DJANGO_SECRET_KEY the way `seed_demo` derives its demo users' keys (so the
benchmark computes their codes itself, and `manage.py demo_otp load.supervisor.1` prints one),
and a random sample of the stores' approved and pending records to open. These users have a
published password: the database must be a benchmark's own on this machine (a database that is
not on a loopback address is refused). Then every client (a thread with one
`requests.Session` per role) signs in once per role through the sign-in page with its CSRF
token, supervisors and compliance admins also through the page of the second factor. The
figures of these sign-ins are printed apart, before the clock starts.

The clock then runs for --seconds. Each client picks operations by weight (--weights):

    counter_home       counter staff: the home page
    counter_find       counter staff: find an approved registration by mobile number (POST)
    counter_record     counter staff: a record page of their store
    counter_flow       counter staff: a whole registration, one request a page as a browser
                       does it: new draft, materials with an upload of an identity copy (a PNG
                       made in memory), channel, identity and submit, then the record page;
                       synthetic values never stored before (mobile numbers after the
                       highest 6xxxxxxx one stored, two-letter HKIDs derived from them, 20-digit
                       ICCIDs from them and the time), so no uniqueness rule refuses them
    review_queue       supervisor: the review queue
    review_detail      supervisor: a pending record's review page
    review_dashboard   supervisor: the dashboard
    audit_log          compliance admin: the audit log page

`--only NAME,...` runs some of them alone: the CPU per request of one page, for instance.
A request is an error when its status is not the one expected (200 for a page, 302 to the
expected address for a form) or when it is not the expected page. For every request the table
gives count, errors and p50/p95/p99 latency, then requests per second over the window, and the
CPU time per request of the app server (gunicorn's master and workers: --server-pids, else the
processes holding the listening socket of --url's port, found in /proc) and of PostgreSQL (the
backends of the database, autovacuum included; and every postgres process), and of the job
worker beside the server (a `run_worker` process in the server's folder), from the
utime+stime of /proc/<pid>/stat sampled twice a second (a process that exits between samples
loses at most its last half second). The client shares the machine: its own CPU and the
machine's busy share are printed too. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import html
import ipaddress
import json
import math
import os
import random
import re
import statistics
import struct
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.http_requests import loopback

PASSWORD = "load-benchmark-password-1"  # noqa: S105 - of the benchmark's own users
USER_PREFIX = "load"
SAMPLE_SIZE = 200
SAMPLE_INTERVAL = 0.5
REFERENCE = r"[A-Z0-9]{5}-[A-Z0-9]{5}"
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
FORM_ERROR = re.compile(
    r'class="[^"]*\b(?:invalid-feedback|alert-danger)\b[^"]*"[^>]*>(.*?)</(?:span|div)>', re.S
)
TAG = re.compile(r"<[^>]+>")

# (operation, role, weight)
OPERATIONS = (
    ("counter_home", "counter", 10),
    ("counter_find", "counter", 10),
    ("counter_record", "counter", 10),
    ("counter_flow", "counter", 10),
    ("review_queue", "supervisor", 10),
    ("review_detail", "supervisor", 20),
    ("review_dashboard", "supervisor", 2),
    ("audit_log", "compliance", 3),
)
ROLES = ("counter", "supervisor", "compliance")


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ordered list."""
    if not ordered:
        return 0.0
    rank = math.ceil(len(ordered) * fraction)
    return ordered[min(max(rank, 1), len(ordered)) - 1]


def png_image(width: int = 160, height: int = 120, seed: int = 1) -> bytes:
    """A valid PNG (RGB, noisy so that it does not compress to nothing), made in memory."""
    rng = random.Random(seed)
    rows = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 6))
        + chunk(b"IEND", b"")
    )


# Preparation (in-process, before the clock) ------------------------------------------------------


@dataclass
class Plan:
    """What the clients need: their users, the records to open, the synthetic values' start."""

    usernames: dict[str, list[str]]
    totp_keys: dict[str, bytes]
    # Per counter user: (reference, local mobile number) of approved records of their store.
    approved: dict[str, list[tuple[str, str]]]
    pending: list[str]
    next_mobile: int
    database: str


def prepare(clients: int, stores: int, password: str) -> Plan:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "simreg.settings")
    import django

    django.setup()
    import phonenumbers
    from django.db import connection, connections

    from registrations import roles, selectors, services
    from registrations.management.commands.seed_demo import demo_totp_key
    from registrations.models import Registration, Store, User

    host = connection.settings_dict.get("HOST") or ""
    if connection.vendor != "sqlite" and host not in {"localhost", ""}:
        try:
            local = ipaddress.ip_address(host).is_loopback
        except ValueError:
            local = False
        if not local:
            raise SystemExit(
                "The benchmark makes users with a published password: it runs only against a "
                "database on this machine (DATABASE_URL on a loopback address)."
            )
    store_rows = list(Store.objects.filter(is_active=True).order_by("code")[:stores])
    if not store_rows:
        store_rows = [services.store_create_or_update(code="LOAD1", name="Load store 1")]
    usernames: dict[str, list[str]] = {role: [] for role in ROLES}
    totp_keys: dict[str, bytes] = {}
    role_names = {
        "counter": roles.COUNTER_STAFF,
        "supervisor": roles.SUPERVISOR,
        "compliance": roles.COMPLIANCE_ADMIN,
    }
    approved: dict[str, list[tuple[str, str]]] = {}
    samples_by_store: dict[int, list[tuple[str, str]]] = {}
    for number in range(1, clients + 1):
        for role in ROLES:
            username = f"{USER_PREFIX}.{role}.{number}"
            usernames[role].append(username)
            works_at = [store_rows[(number - 1) % len(store_rows)]] if role == "counter" else []
            supervises = store_rows if role == "supervisor" else []
            user = User.objects.filter(username=username).first()
            if user is None:
                user = services.user_create_or_update(
                    username=username,
                    password=password,
                    roles=[role_names[role]],
                    stores=works_at,
                    supervised_stores=supervises,
                )
            if roles.needs_second_factor(user):
                key = demo_totp_key(username)
                device = selectors.second_factor_device_for(user=user)
                if device is None or device.key != key:
                    services.second_factor_enrol_key(user=user, key=key)
                totp_keys[username] = bytes.fromhex(key)
            if role == "counter":
                store_ids = list(user.stores.values_list("pk", flat=True))
                rows: list[tuple[str, str]] = []
                for store_id in store_ids:
                    if store_id not in samples_by_store:
                        found = Registration.objects.filter(
                            store_id=store_id, status=Registration.Status.APPROVED
                        ).exclude(msisdn="")
                        samples_by_store[store_id] = [
                            (reference, msisdn)
                            for reference, msisdn in found.order_by("?").values_list(
                                "reference", "msisdn"
                            )[: SAMPLE_SIZE * 2]
                            if phonenumbers.is_valid_number(phonenumbers.parse(msisdn, "HK"))
                        ][:SAMPLE_SIZE]
                    rows += samples_by_store[store_id]
                approved[username] = [
                    (reference, msisdn.removeprefix("+852")) for reference, msisdn in rows
                ]
    supervisor = User.objects.get(username=usernames["supervisor"][0])
    pending = list(
        Registration.objects.filter(
            status=Registration.Status.PENDING, store__in=supervisor.supervised_stores.all()
        )
        .order_by("?")
        .values_list("reference", flat=True)[:SAMPLE_SIZE]
    )
    # Mobile numbers 6xxxxxxx after the highest one stored: new to the database at every run.
    highest = (
        Registration.objects.filter(msisdn__startswith="+8526")
        .order_by("-msisdn")
        .values_list("msisdn", flat=True)
        .first()
    )
    next_mobile = max(int(highest[4:]) + 1 if highest else 0, 61_000_000)
    database = str(connection.settings_dict.get("NAME") or "")
    connections.close_all()
    return Plan(usernames, totp_keys, approved, pending, next_mobile, database)


# Synthetic customers, unique to the run ----------------------------------------------------------


class Customers:
    """Valid and new values for each registration: a mobile number after the highest stored,
    a two-letter HKID and a 20-digit ICCID derived from it (the seeded data use one-letter
    HKIDs and 19-digit ICCIDs)."""

    LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

    def __init__(self, next_mobile: int) -> None:
        import phonenumbers

        self._valid = phonenumbers.is_valid_number
        self._parse = phonenumbers.parse
        self._lock = threading.Lock()
        self._next = next_mobile
        self._stamp = int(time.time())

    def take(self) -> dict[str, str]:
        with self._lock:
            while True:
                mobile = self._next
                self._next += 1
                if self._valid(self._parse(str(mobile), "HK")):
                    break
        from registrations.validators import hkid_check_digit, luhn_check_digit

        n = mobile - 60_000_000
        prefix = "W" + self.LETTERS[(n // 1_000_000) % len(self.LETTERS)]
        digits = f"{n % 1_000_000:06d}"
        iccid_body = f"899{self._stamp % 10**10:010d}{n % 10**6:06d}"
        return {
            "msisdn": str(mobile),
            "hkid": prefix + digits + hkid_check_digit(prefix, digits),
            "iccid": iccid_body + luhn_check_digit(iccid_body),
        }


# Figures ---------------------------------------------------------------------------------------


@dataclass
class Figures:
    times: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: collections.Counter = field(default_factory=collections.Counter)
    reasons: collections.Counter = field(default_factory=collections.Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str, seconds: float, error: str | None) -> None:
        with self.lock:
            bisect.insort(self.times[name], seconds)
            if error:
                self.errors[name] += 1
                self.reasons[(name, error)] += 1

    def rows(self) -> list[dict]:
        rows = []
        for name in sorted(self.times):
            ordered = self.times[name]
            rows.append(
                {
                    "operation": name,
                    "count": len(ordered),
                    "errors": self.errors[name],
                    "p50_ms": percentile(ordered, 0.50) * 1000,
                    "p95_ms": percentile(ordered, 0.95) * 1000,
                    "p99_ms": percentile(ordered, 0.99) * 1000,
                    "mean_ms": statistics.fmean(ordered) * 1000 if ordered else 0.0,
                }
            )
        return rows

    def total(self) -> dict:
        ordered = sorted(t for times in self.times.values() for t in times)
        return {
            "operation": "all requests",
            "count": len(ordered),
            "errors": sum(self.errors.values()),
            "p50_ms": percentile(ordered, 0.50) * 1000,
            "p95_ms": percentile(ordered, 0.95) * 1000,
            "p99_ms": percentile(ordered, 0.99) * 1000,
            "mean_ms": statistics.fmean(ordered) * 1000 if ordered else 0.0,
        }


# CPU of the server's and the database's processes, from /proc ----------------------------------

TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> tuple[str, int, int, int] | None:
    """(comm, ppid, utime+stime in ticks, start time) of a process, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.find("(") + 1 : text.rfind(")")]
    rest = text[text.rfind(")") + 2 :].split()
    return comm, int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


def cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def listening_pids(port: int) -> set[int]:
    """The processes holding a listening TCP socket on the port (gunicorn's master and workers
    share the one the master opened)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{parts[9]}]")
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    pids.add(int(entry.name))
                    break
        except OSError:
            continue
    return pids


class CpuMeter:
    """CPU seconds used between start() and stop() by groups of processes, sampled in a thread.

    Each process is known by (pid, start time); one first seen after start() counts from zero.
    """

    def __init__(self, server_roots: set[int], database: str) -> None:
        self.server_roots = server_roots
        self.database = database
        self.server_cwd = ""
        for pid in server_roots:
            try:
                self.server_cwd = os.readlink(f"/proc/{pid}/cwd")
                break
            except OSError:
                continue
        self.first: dict[str, dict[tuple[int, int], int]] = {}
        self.last: dict[str, dict[tuple[int, int], int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()
        self._titles: dict[tuple[int, int], str] = {}

    def _groups(self) -> dict[str, dict[tuple[int, int], int]]:
        stats = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = proc_stat(int(entry.name))
                if stat is not None:
                    stats[int(entry.name)] = stat
        groups: dict[str, dict[tuple[int, int], int]] = {
            "server": {},
            "database": {},
            "postgres": {},
            "worker": {},
        }
        for pid, (comm, ppid, ticks, started) in stats.items():
            key = (pid, started)
            if pid in self.server_roots or ppid in self.server_roots:
                groups["server"][key] = ticks
            elif comm in {"postgres", "postmaster"}:
                groups["postgres"][key] = ticks
                title = self._titles.get(key)
                if title is None:
                    title = self._titles[key] = cmdline(pid)
                if self.database and self.database in title.split():
                    groups["database"][key] = ticks
            elif comm.startswith("python") and self.server_cwd:
                title = self._titles.get(key)
                if title is None:
                    title = self._titles[key] = cmdline(pid)
                if "run_worker" in title:
                    try:
                        if os.readlink(f"/proc/{pid}/cwd") == self.server_cwd:
                            groups["worker"][key] = ticks
                    except OSError:
                        pass
        return groups

    def _sample(self) -> None:
        groups = self._groups()
        with self._lock:
            for name, processes in groups.items():
                self.last.setdefault(name, {}).update(processes)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            self._sample()

    def start(self) -> None:
        self.first = self._groups()
        self.last = {name: dict(processes) for name, processes in self.first.items()}
        self._thread.start()

    def stop(self) -> dict[str, dict]:
        self._stop.set()
        self._thread.join()
        self._sample()
        result = {}
        for name, last in self.last.items():
            first = self.first.get(name, {})
            ticks = sum(value - first.get(key, 0) for key, value in last.items())
            result[name] = {"seconds": ticks / TICKS, "processes": len(last)}
        return result


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values) - idle, sum(values)


# Virtual users ----------------------------------------------------------------------------------


class PageError(Exception):
    pass


class Client:
    """One virtual user: a session per role, signed in once, then operations by weight."""

    def __init__(
        self,
        index: int,
        base: str,
        plan: Plan,
        customers: Customers,
        image: bytes,
        figures: Figures,
        setup: Figures,
        weights: list[tuple[str, int]],
        seed: int,
        password: str,
    ) -> None:
        self.index = index
        self.password = password
        self.base = base
        self.plan = plan
        self.customers = customers
        self.image = image
        self.figures = figures
        self.setup = setup
        self.recording = setup
        self.rng = random.Random(seed * 1000 + index)
        self.names = [name for name, _ in weights]
        self.weights = [weight for _, weight in weights]
        self.users = {role: plan.usernames[role][index] for role in ROLES}
        self.sessions: dict[str, requests.Session] = {}
        self.tokens: dict[str, str] = {}
        self.flows = 0
        self.flow_times: list[float] = []
        self.flow_errors = 0
        self.failure: str | None = None

    # One request, timed and checked.
    def request(
        self,
        role: str,
        name: str,
        method: str,
        path: str,
        *,
        data: dict | None = None,
        files: dict | None = None,
        status: int = 200,
        marker: str = "",
        location: str = "",
    ) -> requests.Response:
        session = self.sessions[role]
        if method == "POST":
            data = {"csrfmiddlewaretoken": self.tokens.get(role, ""), **(data or {})}
        error = None
        started = time.perf_counter()
        try:
            response = session.request(
                method, self.base + path, data=data, files=files, timeout=60, allow_redirects=False
            )
        except requests.RequestException as exc:
            elapsed = time.perf_counter() - started
            self.recording.add(name, elapsed, f"no answer: {type(exc).__name__}")
            raise PageError(name) from exc
        elapsed = time.perf_counter() - started
        if response.status_code != status:
            error = f"status {response.status_code}"
            if response.is_redirect:
                error += " to " + urlsplit(response.headers.get("Location", "")).path
            elif response.status_code == 200:
                error += self.form_errors(response.text)
        elif status == 302:
            target = urlsplit(response.headers.get("Location", "")).path
            if not re.fullmatch(location, target):
                error = f"redirect to {re.sub(REFERENCE, '<ref>', target)}"
        elif marker and marker not in response.text:
            error = "not the expected page" + self.form_errors(response.text)
        if status == 200 and error is None:
            token = CSRF_INPUT.search(response.text)
            if token:
                self.tokens[role] = token.group(1)
        self.recording.add(name, elapsed, error)
        if error:
            raise PageError(name)
        return response

    @staticmethod
    def form_errors(text: str) -> str:
        found = []
        for match in FORM_ERROR.finditer(text):
            message = " ".join(html.unescape(TAG.sub(" ", match.group(1))).split())
            if message and message not in found:
                found.append(message)
        return (": " + "; ".join(found)[:200]) if found else ""

    # Signing in.
    def sign_in(self, needed: set[str]) -> None:
        for role in (role for role in ROLES if role in needed):
            self.sessions[role] = session = requests.Session()
            session.headers["Accept-Language"] = "en"
            username = self.users[role]
            self.request(role, "sign-in: page (GET)", "GET", "/login/", marker='name="password"')
            self.request(
                role,
                "sign-in: password (POST)",
                "POST",
                "/login/",
                data={"username": username, "password": self.password, "next": ""},
                status=302,
                location=r"/",
            )
            if username in self.plan.totp_keys:
                self.second_factor(role, username)
            self.request(role, "sign-in: home (GET)", "GET", "/", marker="<h1")

    def second_factor(self, role: str, username: str) -> None:
        from django_otp.oath import totp

        key = self.plan.totp_keys[username]
        self.request(
            role,
            "sign-in: second factor page (GET)",
            "GET",
            "/account/second-factor/",
            marker='id="second-factor-form"',
        )
        for attempt in range(3):
            code = f"{totp(key):06d}"
            try:
                self.request(
                    role,
                    "sign-in: second factor (POST)",
                    "POST",
                    "/account/second-factor/",
                    data={"otp_token": code, "next": "/"},
                    status=302,
                    location=r"/",
                )
                return
            except PageError:
                # A code signs in once: the same user signed in during this period already.
                if attempt == 2:
                    raise
                time.sleep(30 - time.time() % 30 + 1)

    # Operations.
    def run(self, deadline: float) -> None:
        self.recording = self.figures
        while time.monotonic() < deadline:
            name = self.rng.choices(self.names, self.weights)[0]
            with contextlib.suppress(PageError):
                getattr(self, name)()

    def counter_home(self) -> None:
        self.request("counter", "counter: home (GET)", "GET", "/", marker='id="counter-heading"')

    def counter_find(self) -> None:
        reference, mobile = self.rng.choice(self.plan.approved[self.users["counter"]])
        self.request(
            "counter",
            "counter: find by mobile (POST)",
            "POST",
            "/counter/find/",
            data={"by": "msisdn", "msisdn": mobile, "document_type": "", "document_number": ""},
            status=302,
            location=f"/counter/{reference}/",
        )

    def counter_record(self) -> None:
        reference, _ = self.rng.choice(self.plan.approved[self.users["counter"]])
        self.request(
            "counter",
            "counter: record page (GET)",
            "GET",
            f"/counter/{reference}/",
            marker=f'id="reference">{reference}<',
        )

    def counter_flow(self) -> None:
        started = time.perf_counter()
        self.flows += 1
        try:
            self._counter_flow()
        except PageError:
            self.flow_errors += 1
            raise
        self.flow_times.append(time.perf_counter() - started)

    def _counter_flow(self) -> None:
        customer = self.customers.take()
        response = self.request(
            "counter",
            "flow 1: new draft (POST)",
            "POST",
            "/counter/new/",
            status=302,
            location=f"/counter/{REFERENCE}/materials/",
        )
        reference = urlsplit(response.headers["Location"]).path.split("/")[2]
        step = f"/counter/{reference}"
        marker = f'id="reference">{reference}<'
        self.request(
            "counter", "flow 2: materials (GET)", "GET", f"{step}/materials/", marker=marker
        )
        self.request(
            "counter",
            "flow 3: materials + copy (POST)",
            "POST",
            f"{step}/materials/",
            data={
                "customer_kind": "individual",
                "document_type": "hkid",
                "original_sighted": "on",
                "sim_kind": "physical",
                "iccid": customer["iccid"],
                "eid": "",
                "msisdn": customer["msisdn"],
                "plan": "prepaid",
                "action": "next",
            },
            files={"identity_copy": ("hkid.png", self.image, "image/png")},
            status=302,
            location=f"{step}/channel/",
        )
        self.request("counter", "flow 4: channel (GET)", "GET", f"{step}/channel/", marker=marker)
        self.request(
            "counter",
            "flow 5: channel (POST)",
            "POST",
            f"{step}/channel/",
            data={"channel": "counter", "online_reference": "", "action": "next"},
            status=302,
            location=f"{step}/identity/",
        )
        self.request("counter", "flow 6: identity (GET)", "GET", f"{step}/identity/", marker=marker)
        self.request(
            "counter",
            "flow 7: identity + submit (POST)",
            "POST",
            f"{step}/identity/",
            data={
                "name_en": "LOAD Test Customer",
                "name_zh": "測試客戶𠮷",
                "document_number": customer["hkid"],
                "date_of_birth": "1985-06-15",
                "nationality": "HK",
                "address": "Flat 1A, 1 Load Test Road, Hong Kong",
                "contact_number": customer["msisdn"],
                "email": "",
                "representative_name_en": "",
                "representative_name_zh": "",
                "representative_document_type": "",
                "representative_document_number": "",
                "representative_date_of_birth": "",
                "declaration_accepted": "on",
                "action": "submit",
            },
            status=302,
            location=f"{step}/",
        )
        self.request(
            "counter", "flow 8: record after submit (GET)", "GET", f"{step}/", marker=marker
        )

    def review_queue(self) -> None:
        self.request(
            "supervisor", "review: queue (GET)", "GET", "/review/", marker='id="queue-filters"'
        )

    def review_detail(self) -> None:
        reference = self.rng.choice(self.plan.pending)
        self.request(
            "supervisor",
            "review: detail (GET)",
            "GET",
            f"/review/{reference}/",
            marker=f"<title>{reference}",
        )

    def review_dashboard(self) -> None:
        self.request(
            "supervisor",
            "review: dashboard (GET)",
            "GET",
            "/review/dashboard/",
            marker='id="status-counts"',
        )

    def audit_log(self) -> None:
        self.request(
            "compliance",
            "compliance: audit log (GET)",
            "GET",
            "/compliance/audit/",
            marker='id="audit-events"',
        )


# Running and reporting ------------------------------------------------------------------------


def parse_weights(text: str) -> list[tuple[str, int]]:
    weights = {name: weight for name, _, weight in OPERATIONS}
    for part in filter(None, (item.strip() for item in text.split(","))):
        name, _, value = part.partition("=")
        if name not in weights or not value.isdigit():
            raise SystemExit(f"--weights: {part!r} is not name=integer with a known name")
        weights[name] = int(value)
    return [(name, weight) for name, weight in weights.items() if weight > 0]


def run(args: argparse.Namespace) -> dict:
    port = urlsplit(args.url).port or 80
    plan = prepare(args.clients, args.stores, args.password)
    weights = parse_weights(args.weights)
    if args.only:
        chosen = {name.strip() for name in args.only.split(",")}
        unknown = chosen - {name for name, _, _ in OPERATIONS}
        if unknown:
            raise SystemExit(f"--only: unknown operation(s) {', '.join(sorted(unknown))}")
        weights = [(name, weight) for name, weight in weights if name in chosen]
    notes = []
    if not plan.pending:
        weights = [(name, w) for name, w in weights if name != "review_detail"]
        notes.append("no pending record in the supervised stores: review_detail left out")
    if not all(plan.approved.values()):
        weights = [(n, w) for n, w in weights if n not in {"counter_find", "counter_record"}]
        notes.append("a store has no approved record: counter_find and counter_record left out")
    if not weights:
        raise SystemExit("No operation to run (--weights, --only).")
    image = png_image()
    customers = Customers(plan.next_mobile)
    figures, setup = Figures(), Figures()
    clients = [
        Client(
            i,
            args.url.rstrip("/"),
            plan,
            customers,
            image,
            figures,
            setup,
            weights,
            args.seed,
            args.password,
        )
        for i in range(args.clients)
    ]

    role_of = {name: role for name, role, _ in OPERATIONS}
    needed = {role_of[name] for name, _ in weights}

    def sign_in(client: Client) -> None:
        try:
            client.sign_in(needed)
        except PageError as exc:
            client.failure = str(exc)

    threads = [threading.Thread(target=sign_in, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ready = [client for client in clients if client.failure is None]
    if not ready:
        return {"setup": setup.rows(), "reasons": reasons(setup), "failed": True}

    if args.server_pids:
        roots = {int(pid) for pid in args.server_pids.split(",") if pid.strip()}
    else:
        roots = listening_pids(port)
    if not roots:
        notes.append(f"no app server process found on port {port}: use --server-pids")
    meter = CpuMeter(roots, args.database or plan.database)
    busy0, total0 = machine_ticks()
    own0 = time.process_time()
    meter.start()
    started = time.perf_counter()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=client.run, args=(deadline,)) for client in ready]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu = meter.stop()
    own = time.process_time() - own0
    busy1, total1 = machine_ticks()
    total = figures.total()
    requests_done = max(total["count"], 1)
    flow_times = sorted(t for client in ready for t in client.flow_times)
    return {
        "url": args.url,
        "database": args.database or plan.database,
        "clients": len(ready),
        "clients_failed": len(clients) - len(ready),
        "seconds": wall,
        "weights": dict(weights),
        "setup": setup.rows(),
        "operations": figures.rows(),
        "total": total,
        "requests_per_second": total["count"] / wall if wall else 0.0,
        "flows": {
            "started": sum(client.flows for client in ready),
            "completed": len(flow_times),
            "errors": sum(client.flow_errors for client in ready),
            "per_second": len(flow_times) / wall if wall else 0.0,
            "p50_ms": percentile(flow_times, 0.5) * 1000,
            "p95_ms": percentile(flow_times, 0.95) * 1000,
        },
        "cpu": {
            name: {
                **values,
                "ms_per_request": values["seconds"] * 1000 / requests_done,
                "cores": values["seconds"] / wall if wall else 0.0,
            }
            for name, values in cpu.items()
        }
        | {
            "client": {
                "seconds": own,
                "processes": 1,
                "ms_per_request": own * 1000 / requests_done,
                "cores": own / wall if wall else 0.0,
            }
        },
        "server_pids": sorted(roots),
        "machine_busy": (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0,
        "cores": os.cpu_count() or 1,
        "reasons": reasons(figures) + reasons(setup),
        "notes": notes,
    }


def reasons(figures: Figures) -> list[dict]:
    return [
        {"operation": name, "reason": reason, "count": count}
        for (name, reason), count in figures.reasons.most_common(20)
    ]


def print_table(result: dict) -> None:
    def line(row: dict) -> str:
        return (
            f"  {row['operation']:<36} {row['count']:>6} {row['errors']:>6} "
            f"{row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} {row['p99_ms']:>8.1f}"
        )

    header = (
        f"  {'request':<36} {'count':>6} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    )
    print("Sign-in (before the clock):")
    print(header)
    for row in result["setup"]:
        print(line(row))
    if result.get("failed"):
        print("No client could sign in:")
        for item in result["reasons"]:
            print(f"  {item['count']:>5} x {item['operation']}: {item['reason']}")
        return
    print(
        f"\n{result['clients']} clients for {result['seconds']:.1f} s against {result['url']} "
        f"(database {result['database']}); weights "
        + ", ".join(f"{name}={weight}" for name, weight in result["weights"].items())
    )
    if result["clients_failed"]:
        print(f"  {result['clients_failed']} client(s) could not sign in and did not run")
    print(header)
    for row in result["operations"]:
        print(line(row))
    print(line(result["total"]))
    flows = result["flows"]
    print(
        f"\nRequests: {result['total']['count']} in {result['seconds']:.1f} s = "
        f"{result['requests_per_second']:.1f} requests/s, {result['total']['errors']} errors"
    )
    print(
        f"Counter flows: {flows['completed']} completed of {flows['started']} "
        f"({flows['per_second']:.2f}/s), {flows['errors']} with an error; whole flow "
        f"p50 {flows['p50_ms']:.0f} ms, p95 {flows['p95_ms']:.0f} ms"
    )
    labels = {
        "server": "app server (gunicorn master + workers)",
        "database": f"database (backends of {result['database']})",
        "postgres": "PostgreSQL, every process",
        "worker": "job worker (run_worker beside the server)",
        "client": "this benchmark (the client)",
    }
    print("CPU per request (the window's CPU time / requests):")
    for name, label in labels.items():
        values = result["cpu"].get(name)
        if values is None:
            continue
        print(
            f"  {label:<44} {values['ms_per_request']:>7.1f} ms/request  "
            f"({values['seconds']:.1f} s, {values['cores']:.2f} cores, "
            f"{values['processes']} processes)"
        )
    for note in result["notes"]:
        print(f"Note: {note}")
    ours = sum(result["cpu"][name]["cores"] for name in ("server", "postgres", "worker", "client"))
    print(
        f"Machine busy: {result['machine_busy'] * 100:.0f}% of {result['cores']} cores "
        f"({result['machine_busy'] * result['cores']:.2f} cores; other processes than the "
        f"above: {max(result['machine_busy'] * result['cores'] - ours, 0):.2f} cores)"
    )
    if result["reasons"]:
        print("Errors:")
        for item in result["reasons"]:
            print(f"  {item['count']:>5} x {item['operation']}: {item['reason']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=8, help="virtual users at once (8)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the window (60)")
    parser.add_argument(
        "--weights",
        default="",
        help="name=weight,... to change the mix: "
        + ", ".join(f"{name}={weight}" for name, _, weight in OPERATIONS),
    )
    parser.add_argument(
        "--only", default="", help="these operations alone (comma-separated), e.g. its CPU"
    )
    parser.add_argument("--stores", type=int, default=5, help="stores the users work at (5)")
    parser.add_argument("--password", default=PASSWORD, help="of the users the benchmark makes")
    parser.add_argument("--server-pids", default="", help="gunicorn master pid(s), comma-separated")
    parser.add_argument("--database", default="", help="database name (default: DATABASE_URL's)")
    parser.add_argument("--seed", type=int, default=1, help="of the random choices")
    parser.add_argument(
        "--json",
        default="",
        help="also write the figures as JSON here (-: stdout)",
    )
    args = parser.parse_args()
    if not loopback(args.url):
        parser.error("only a server on this machine (a loopback address) may be measured")
    if args.clients < 1 or args.seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    result = run(args)
    if args.json == "-":
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_table(result)
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result.get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
