"""`make run` seeds demo stores, one user per role and a few sample records."""

import base64
import io
from urllib.parse import urlencode

import pytest
from django.core.management import CommandError, call_command
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations.audit import audit_chain_verify
from registrations.models import AuditEvent, Registration, Store, User
from tests.factories import make_user

# The real sign-in pages, second factor included.
pytestmark = [pytest.mark.django_db, pytest.mark.second_factor]

LOGINS = {
    "counter.mk": "demo-counter-mk",
    "counter.cwb": "demo-counter-cwb",
    "supervisor": "demo-supervisor",
    "compliance": "demo-compliance",
    "admin": "demo-superuser",
}


@pytest.fixture
def seeded(settings, tmp_path):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    out = io.StringIO()
    call_command("seed_demo", "--force", stdout=out)
    return out.getvalue()


# The demo users who sign in with a second factor: their codes come from `demo_otp`.
WITH_CODE = {"supervisor", "compliance", "admin"}


def demo_code(username: str) -> str:
    out = io.StringIO()
    call_command("demo_otp", username, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def sign_in(client, username: str, password: str) -> None:
    response = client.post(
        "/login/",
        urlencode({"username": username, "password": password}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302, username
    if username in WITH_CODE:
        assert client.get("/")["Location"].startswith("/account/second-factor/"), username
        response = client.post("/account/second-factor/", {"otp_token": demo_code(username)})
        assert response.status_code == 302, username


# What each demo user's home shows, and what it must not (another role's part).
HOMES = {
    "counter.mk": ("Drafts to resume", "submissions wait for review"),
    "counter.cwb": ("Drafts to resume", "submissions wait for review"),
    "supervisor": ("submissions wait for review", "Drafts to resume"),
    "compliance": ("recorded", "Drafts to resume"),
    "admin": ("Open administration", "Drafts to resume"),
}


def test_seed_demo_prints_every_login_and_each_user_signs_in_to_their_home(client, seeded):
    for username, password in LOGINS.items():
        assert username in seeded and password in seeded
        assert (f"demo_otp {username}" in seeded) == (username in WITH_CODE), username
        sign_in(client, username, password)
        assert int(client.session["_auth_user_id"]) == User.objects.get(username=username).pk
        home = client.get("/")
        assert home.status_code == 200, username
        shown, not_shown = HOMES[username]
        page = home.content.decode()
        assert shown in page and not_shown not in page, username
        client.post("/logout/")
    assert set(Store.objects.values_list("code", flat=True)) == {"MK01", "CWB1"}
    assert set(User.objects.get(username="counter.mk").stores.values_list("code", flat=True)) == {
        "MK01"
    }


def test_sample_records_cover_the_review_states_and_are_audited(client, seeded):
    statuses = sorted(Registration.objects.values_list("status", flat=True))
    assert statuses == ["approved", "pending", "pending", "pending", "returned"]
    # Each record made through the services: created, its copy uploaded and submitted by the
    # counter staff of its store, decided by the supervisor, every step an audit event.
    for registration in Registration.objects.select_related("store", "created_by"):
        events = AuditEvent.objects.filter(registration_reference=registration.reference)
        by = dict(events.values_list("action", "actor__username"))
        assert registration.created_by.stores.get() == registration.store
        counter = registration.created_by.username
        assert by["draft_created"] == by["document_uploaded"] == by["submitted"] == counter
        if registration.status != "pending":
            assert by[registration.status] == "supervisor"
        assert registration.documents.count() == 1
    assert audit_chain_verify().ok
    sign_in(client, "supervisor", "demo-supervisor")
    home = client.get("/").content.decode()
    assert '<span class="stat-number" id="pending-count">3</span>' in home
    queue = client.get("/review/").content.decode()
    for registration in Registration.objects.filter(status="pending"):
        assert registration.reference in queue
    client.post("/logout/")
    sign_in(client, "counter.mk", "demo-counter-mk")
    home = client.get("/").content.decode()
    returned = Registration.objects.get(status="returned")
    assert returned.reference in home and "Document unreadable" in home


def test_seeding_again_changes_no_record(seeded):
    before = Registration.objects.count()
    keys = dict(TOTPDevice.objects.values_list("user__username", "key"))
    call_command("seed_demo", "--force", stdout=io.StringIO())
    assert Registration.objects.count() == before
    # The same authenticator keys: an app set up from the first run keeps working.
    assert dict(TOTPDevice.objects.values_list("user__username", "key")) == keys
    assert set(keys) == WITH_CODE


def test_demo_otp_prints_a_key_only_for_a_demo_authenticator(seeded):
    out = io.StringIO()
    call_command("demo_otp", "supervisor", "--key", stdout=out)
    device = TOTPDevice.objects.get(user__username="supervisor")
    assert base64.b32decode(out.getvalue().strip()) == device.bin_key
    # An authenticator enrolled by its user: its codes are nobody else's business.
    real = make_user(roles.SUPERVISOR, username="real")
    TOTPDevice.objects.create(user=real, name="authenticator", confirmed=True)
    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("demo_otp", "real", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no demo authenticator"):
        call_command("demo_otp", "counter.mk", stdout=io.StringIO())


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=io.StringIO())
