"""`make run` seeds demo stores, one user per role and a few sample records."""

import io

import pytest
from django.core.management import CommandError, call_command

from registrations.audit import audit_chain_verify
from registrations.models import Registration, Store

pytestmark = pytest.mark.django_db

LOGINS = {
    "counter.mk": "demo-counter-mk",
    "counter.cwb": "demo-counter-cwb",
    "supervisor": "demo-supervisor",
    "compliance": "demo-compliance",
    "admin": "demo-admin",
}


@pytest.fixture
def seeded(settings, tmp_path):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    out = io.StringIO()
    call_command("seed_demo", "--force", stdout=out)
    return out.getvalue()


def test_seed_demo_prints_every_login_and_each_user_signs_in_to_their_home(client, seeded):
    for username, password in LOGINS.items():
        assert username in seeded and password in seeded
        response = client.post("/login/", {"username": username, "password": password})
        assert response.status_code == 302, username
        home = client.get("/")
        assert home.status_code == 200, username
        client.post("/logout/")
    assert set(Store.objects.values_list("code", flat=True)) == {"MK01", "CWB1"}


def test_sample_records_cover_the_review_states_and_are_audited(client, seeded):
    statuses = sorted(Registration.objects.values_list("status", flat=True))
    assert statuses == ["approved", "pending", "pending", "pending", "returned"]
    assert audit_chain_verify().ok
    client.post("/login/", {"username": "supervisor", "password": "demo-supervisor"})
    home = client.get("/").content.decode()
    assert '<span class="stat-number" id="pending-count">3</span>' in home


def test_seeding_again_changes_no_record(seeded):
    before = Registration.objects.count()
    call_command("seed_demo", "--force", stdout=io.StringIO())
    assert Registration.objects.count() == before


def test_seed_demo_refuses_to_run_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed_demo", stdout=io.StringIO())
