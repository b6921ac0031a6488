"""Start-up: missing or wrong keys stop the app with a message saying what to do."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from registrations.checks import canary_values
from registrations.models import KeyCanary

ROOT = Path(__file__).resolve().parent.parent


def production_env(**overrides) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "FIELD_", "BLIND_", "DATABASE_", "SIMREG_", "AUDIT_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="simreg.settings",
        SIMREG_ENV_FILE=os.devnull,
        DJANGO_SECRET_KEY="Zq8vR2mW9xT4pL7nB3cF6hJ1sD5gK0yA-uE_w3Xr5Yt8Uo1Ip4As7Df0Gh",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        BLIND_INDEX_KEY="production-like-blind-index-key",
        AUDIT_SIGNING_KEY="cHJvZHVjdGlvbi1saWtlLWF1ZGl0LXNpZ25pbmcta3k=",
        DJANGO_ALLOWED_HOSTS="simreg.example.com",
        DATABASE_URL="sqlite:///" + str(ROOT / "var" / "startup-check.sqlite3"),
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def manage(*args, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "missing",
    ["DJANGO_SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "BLIND_INDEX_KEY", "AUDIT_SIGNING_KEY"],
)
def test_a_missing_key_stops_start_up_naming_the_key_and_how_to_make_it(missing):
    result = manage("check", env=production_env(**{missing: None}))
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert "Generate one with" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("keys", "position"),
    [("not-a-fernet-key", "1 of 1"), (f"{Fernet.generate_key().decode()},c2hvcnQ=", "2 of 2")],
)
def test_a_malformed_encryption_key_stops_start_up_with_one_line_saying_how_to_make_one(
    keys, position
):
    env = production_env(FIELD_ENCRYPTION_KEYS=keys)
    for command in (
        [sys.executable, "manage.py", "check"],
        [sys.executable, "manage.py", "rotate_keys", "--check"],
        [sys.executable, "-c", "import simreg.wsgi"],
    ):
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 1, command
        assert "Traceback" not in result.stderr, command
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"FIELD_ENCRYPTION_KEYS: key number {position} is not a Fernet")
        assert "Generate one with: python -c" in line and "Fernet.generate_key()" in line


def test_check_deploy_with_production_settings_prints_no_warning():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr + result.stdout
    assert "System check identified no issues" in result.stdout


def database_url() -> str:
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    return (
        f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
        f"{settings['PORT']}/{settings['NAME']}"
    )


def keyed_database_env(settings, **overrides) -> dict:
    """A production environment on the test database, its key canary written with the test
    keys, and those keys unless overridden."""
    token, index = canary_values()
    KeyCanary.objects.create(token=token, index=index)
    keys = {
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEY),
        "BLIND_INDEX_KEY": settings.BLIND_INDEX_KEY,
    }
    return production_env(DATABASE_URL=database_url(), **{**keys, **overrides})


@pytest.mark.django_db(transaction=True)
def test_a_wrong_encryption_key_stops_start_up_and_the_right_one_starts(settings):
    right = keyed_database_env(settings)
    assert manage("check", env=right).returncode == 0

    wrong = {**right, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}
    result = manage("check", env=wrong)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS cannot decrypt the data stored in this database" in result.stderr

    # The WSGI entry point refuses to start as well.
    code = "import simreg.wsgi"
    started = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=wrong, capture_output=True, text=True
    )
    assert started.returncode != 0
    assert "simreg cannot start" in started.stderr


@pytest.mark.django_db(transaction=True)
def test_a_changed_blind_index_key_stops_start_up(settings):
    env = keyed_database_env(settings, BLIND_INDEX_KEY="a different blind index key")
    result = manage("check", env=env)
    assert result.returncode != 0
    assert "BLIND_INDEX_KEY differs" in result.stderr


@pytest.mark.parametrize(
    "key", ["not-base64!", "c2hvcnQ=", "dG9vLWxvbmctZm9yLWFuLWVkMjU1MTktc2VlZC0zMy1ieXRlcyEh"]
)
def test_an_audit_signing_key_that_is_not_an_ed25519_key_stops_start_up(key):
    result = manage("check", env=production_env(AUDIT_SIGNING_KEY=key))
    assert result.returncode != 0
    assert "AUDIT_SIGNING_KEY is not an Ed25519 key" in result.stderr
    assert "Traceback" not in result.stderr
