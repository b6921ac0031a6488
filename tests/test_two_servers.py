"""Two app servers share nothing but the database and the bucket.

Two real gunicorn servers on loopback, against one PostgreSQL test database (as the app's own
role when it exists) and one bucket of the S3-compatible test server: a registration whose copy
is uploaded through server A is reviewed through server B (the supervisor signs in there with
a password and an authenticator code, opens the record, views the copy, approves), over HTTP
with a cookie jar, as two browsers behind a load balancer would.

Needs PostgreSQL and SIMREG_TEST_S3_ENDPOINT: `make test-s3` runs it (and, under CI=true, a
missing PostgreSQL there fails it).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from django.conf import settings
from django.db import connection
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations import storage as app_storage
from registrations.crypto import decrypt_bytes
from registrations.models import AuditEvent, Registration
from tests.factories import (
    PNG,
    VALID_ICCID,
    channel_form,
    identity_form,
    make_store,
    make_user,
    totp_code,
)
from tests.storage import closed_port, s3_client, s3_key, s3_mode

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"  # tests.factories.make_user's
APP_ROLE = "simreg_app"  # as .ci/postgres.sh creates it
SCAN = PNG + b" WONG Siu Ling Z683365(A)"
START_SECONDS = 60
REQUEST_SECONDS = 30

# Two app servers share one PostgreSQL database.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres_only]


def require_the_stack() -> None:
    if not s3_mode():
        pytest.skip("needs an S3-compatible server (SIMREG_TEST_S3_ENDPOINT): `make test-s3`")


def app_role_exists() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [APP_ROLE])
        return cursor.fetchone() is not None


def server_database_url() -> str:
    """The test database, as the app's role when migrate granted it its privileges."""
    params = connection.settings_dict
    user, password = params["USER"], params["PASSWORD"]
    if settings.DATABASE_APP_ROLE == APP_ROLE and app_role_exists():
        user, password = APP_ROLE, APP_ROLE
    host = params["HOST"] or "127.0.0.1"
    port = params["PORT"] or 5432
    return f"postgres://{quote(user)}:{quote(password)}@{host}:{port}/{params['NAME']}"


class Server:
    """One gunicorn server (one worker) on a loopback port, stopped by `stop`."""

    def __init__(self, name: str, log: Path, env: dict[str, str]) -> None:
        self.port = closed_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "simreg/gunicorn.conf.py"],
            cwd=ROOT,
            env={**env, "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": "1"},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.name = name

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                if requests.get(f"{self.url}/healthz?live", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server {self.name} did not start:\n{self.log_tail()}")

    def log_tail(self) -> str:
        self._log_file.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self._log_file.close()


class Browser:
    """A cookie jar and the pages of one server, as a browser sends its forms."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(
            self.server.url + path, timeout=REQUEST_SECONDS, allow_redirects=False
        )

    def post(self, path: str, data: dict, files: dict | None = None) -> requests.Response:
        data = {**data, "csrfmiddlewaretoken": self.session.cookies["csrftoken"]}
        return self.session.post(
            self.server.url + path,
            data=data,
            files=files,
            timeout=REQUEST_SECONDS,
            allow_redirects=False,
        )

    def sign_in(self, username: str) -> requests.Response:
        assert self.get("/login/").status_code == 200
        response = self.post("/login/", {"username": username, "password": PASSWORD})
        assert response.status_code == 302, self.server.log_tail()
        return response


@pytest.fixture
def servers(private_storage, tmp_path) -> Iterator[tuple[Server, Server]]:
    require_the_stack()
    drop = ("DATABASE_", "MIGRATION_DATABASE_URL", "SIMREG_TEST_", "DJANGO_SETTINGS_MODULE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.server_settings",
        SIMREG_ENV_FILE=os.devnull,
        DATABASE_URL=server_database_url(),
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SIMREG_DOCUMENT_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME=settings.S3_TEST_BUCKET,
        AWS_S3_ENDPOINT_URL=settings.S3_TEST_ENDPOINT,
        AWS_S3_REGION_NAME="us-east-1",
        # This test's own prefix in the bucket (tests/conftest.py: private_storage).
        AWS_LOCATION=app_storage.private_storage().location,
    )
    started = [Server(name, tmp_path / f"server-{name}.log", env) for name in ("A", "B")]
    try:
        for server in started:
            server.wait_until_up()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def field_value(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} on the page"
    return match.group(1)


def test_an_upload_on_one_server_is_reviewed_and_approved_on_another(servers):
    server_a, server_b = servers
    store = make_store(code="MK01", name="Mong Kok")
    staff = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    device = TOTPDevice.objects.create(user=supervisor, name="authenticator", confirmed=True)

    # The counter, on server A: a draft, the copy, the SIM, the channel, the identity, submit.
    counter = Browser(server_a)
    counter.sign_in("counter")
    response = counter.post("/counter/new/", {})
    assert response.status_code == 302, server_a.log_tail()
    materials = response.headers["Location"]
    reference = materials.strip("/").split("/")[1]
    response = counter.post(
        materials,
        {
            "customer_kind": "individual",
            "document_type": "hkid",
            "original_sighted": "on",
            "sim_kind": "physical",
            "iccid": VALID_ICCID,
            "msisdn": "6123 4567",
            "plan": "prepaid",
            "action": "next",
        },
        files={"identity_copy": ("hkid.png", SCAN, "image/png")},
    )
    assert response.status_code == 302, server_a.log_tail()
    response = counter.post(f"/counter/{reference}/channel/", channel_form())
    assert response.status_code == 302, server_a.log_tail()
    response = counter.post(f"/counter/{reference}/identity/", identity_form())
    assert response.status_code == 302, server_a.log_tail()
    registration = Registration.objects.get(reference=reference)
    assert registration.status == "pending"
    copy = registration.documents.get()

    # The copy is in the bucket, as ciphertext, where server B will find it.
    stored = (
        s3_client()
        .get_object(Bucket=settings.S3_TEST_BUCKET, Key=s3_key(f"documents/{copy.stored_name}"))[
            "Body"
        ]
        .read()
    )
    assert b"WONG" not in stored and decrypt_bytes(stored) == SCAN

    # The supervisor, on server B: password, then the authenticator's code.
    reviewer = Browser(server_b)
    reviewer.sign_in("super")
    response = reviewer.get(f"/review/{reference}/")
    assert response.status_code == 302, "no page before the second factor"
    assert response.headers["Location"].startswith("/account/second-factor/")
    assert reviewer.get(response.headers["Location"]).status_code == 200
    response = reviewer.post("/account/second-factor/", {"otp_token": totp_code(device)})
    assert response.status_code == 302, server_b.log_tail()

    record = reviewer.get(f"/review/{reference}/")
    assert record.status_code == 200, server_b.log_tail()
    document_path = f"/documents/{reference}/{copy.pk}/"
    assert document_path in record.text
    shown = reviewer.post(document_path, {"reason": "review_submission"})
    assert shown.status_code == 200, server_b.log_tail()
    assert shown.content == SCAN
    response = reviewer.post(
        f"/review/{reference}/decide/",
        {
            "outcome": "approved",
            "reason_code": "",
            "comment": "",
            "submitted_at": field_value(record.text, "submitted_at"),
        },
    )
    assert response.status_code == 302, server_b.log_tail()
    assert response.headers["Location"] == "/review/"

    registration.refresh_from_db()
    assert registration.status == "approved" and registration.reviewer == supervisor
    uploaded = AuditEvent.objects.get(action=AuditEvent.Action.DOCUMENT_UPLOADED)
    viewed = AuditEvent.objects.get(action=AuditEvent.Action.DOCUMENT_VIEWED)
    assert uploaded.actor == staff and viewed.actor == supervisor
    assert viewed.details == {"document": copy.pk, "kind": "identity"}

    # One session store for both: the counter's session cookie from A is good on B.
    on_b = requests.get(
        f"{server_b.url}/",
        cookies=counter.session.cookies,
        timeout=REQUEST_SECONDS,
        allow_redirects=False,
    )
    assert on_b.status_code == 200
    if server_database_url().startswith(f"postgres://{APP_ROLE}:"):
        # The servers connected as the app's role, which owns nothing (see test_audit_db_role).
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s "
                "AND datname = current_database()",
                [APP_ROLE],
            )
            assert cursor.fetchone()[0] >= 2
    # Each server reports the shared database and bucket as up.
    for server in servers:
        health = requests.get(f"{server.url}/healthz", timeout=REQUEST_SECONDS).json()
        assert health["database"] == "ok" and health["storage"] == "ok", server.name
