"""Passwords: at least 12 characters, not a common one, nor like the user's own details; the
same rules for `createsuperuser` (with --no-input too) and `changepassword`, both audited."""

import io

import pytest
from django.contrib.auth.password_validation import (
    CommonPasswordValidator,
    MinimumLengthValidator,
    get_default_password_validators,
    validate_password,
)
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from registrations.management.commands.seed_demo import USERS
from registrations.models import AuditEvent, User
from tests.factories import make_user

pytestmark = pytest.mark.django_db

GOOD = "plum-orbit-lantern-42"
SHORT = "Xq7!vR2#pL9"  # 11 characters, nothing common about it
COMMON = "1q2w3e4r5t6y"  # 12 characters, from the list of common passwords


def test_a_password_needs_12_characters_and_must_not_be_common():
    with pytest.raises(ValidationError, match="at least 12 characters"):
        validate_password(SHORT)
    with pytest.raises(ValidationError, match="too common"):
        validate_password(COMMON)
    validate_password(GOOD)
    kinds = {type(validator) for validator in get_default_password_validators()}
    assert {MinimumLengthValidator, CommonPasswordValidator} <= kinds


def test_the_demo_and_test_passwords_are_long_enough_and_not_common():
    passwords = [password for _name, password, *_rest in USERS]
    passwords.append("correct horse battery staple")  # tests/factories.py
    for password in passwords:
        MinimumLengthValidator(min_length=12).validate(password)
        CommonPasswordValidator().validate(password)


def password_events() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.USER_CHANGED).order_by("id"))


@pytest.mark.parametrize("password", [SHORT, COMMON, "rootroot-root"])
def test_createsuperuser_without_a_prompt_applies_the_same_rules(monkeypatch, password):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)
    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command(
            "createsuperuser",
            "--no-input",
            "--username",
            "rootroot",
            "--email",
            "",
            stdout=io.StringIO(),
        )
    assert not User.objects.filter(username="rootroot").exists()
    assert password_events() == []


def test_a_superuser_made_without_a_prompt_is_an_audit_event_without_the_password(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", GOOD)
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    call_command("createsuperuser", "--no-input", "--email", "", stdout=io.StringIO())
    root = User.objects.get(username="root")
    assert root.is_superuser and root.check_password(GOOD)
    (event,) = password_events()
    assert event.fields == ["is_superuser", "password"]
    assert event.details == {
        "object": "user",
        "username": "root",
        "created": True,
        "change": "password",
    }
    assert event.user_agent == "manage.py"
    assert GOOD not in repr(list(AuditEvent.objects.values()))


def test_a_superuser_made_without_any_password_is_recorded_as_such(monkeypatch):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command(
        "createsuperuser", "--no-input", "--username", "root", "--email", "", stdout=io.StringIO()
    )
    (event,) = password_events()
    assert not User.objects.get(username="root").has_usable_password()
    assert event.fields == ["is_superuser"] and "change" not in event.details


def typed(monkeypatch, *answers: str) -> None:
    """What the user types at changepassword's prompts, in order."""
    answers_left = list(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": answers_left.pop(0))


def test_changepassword_refuses_a_weak_password(monkeypatch, staff):
    typed(monkeypatch, *[SHORT, SHORT, COMMON, COMMON, SHORT, SHORT])
    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command("changepassword", "counter", stdout=io.StringIO(), stderr=io.StringIO())
    staff.refresh_from_db()
    assert staff.check_password("correct horse battery staple")
    assert password_events() == []


def test_a_password_changed_on_the_command_line_is_an_audit_event_without_it(monkeypatch, staff):
    typed(monkeypatch, GOOD, GOOD)
    call_command("changepassword", "counter", stdout=io.StringIO())
    staff.refresh_from_db()
    assert staff.check_password(GOOD)
    (event,) = password_events()
    assert event.fields == ["password"]
    assert event.details == {
        "object": "user",
        "username": "counter",
        "created": False,
        "change": "password",
    }
    assert GOOD not in repr(list(AuditEvent.objects.values()))


def test_a_new_user_in_the_factories_still_signs_in(client):
    make_user(None, username="someone")
    response = client.post(
        "/login/", {"username": "someone", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302
