"""The key canary records the blind-index width too: changing BLIND_INDEX_BITS without
recomputing the stored indexes stops start-up, and rotate_keys --reindex makes it start again."""

import importlib
import io
import re

import pytest
from django.apps import apps
from django.core import checks
from django.core.management import CommandError, call_command

from registrations.checks import canary_fields, check_keys, key_problems
from registrations.models import KeyCanary, Person
from registrations.selectors import registration_list_by_document
from tests.factories import make_person, make_registration
from tests.test_startup import database_url, manage, production_env

pytestmark = pytest.mark.django_db

CHANGED = "BLIND_INDEX_BITS changed from 32 to 48: run `python manage.py rotate_keys --reindex`"


@pytest.fixture
def canary(settings):
    """The canary as written with BLIND_INDEX_BITS at 32 (the newest canary is the one read)."""
    settings.BLIND_INDEX_BITS = 32
    return KeyCanary.objects.create(**canary_fields())


def found_by_document() -> list:
    return registration_list_by_document(document_type="hkid", document_number="A123456(3)")


def rotate(*args: str) -> str:
    out = io.StringIO()
    call_command("rotate_keys", *args, stdout=out)
    return out.getvalue()


def test_a_canary_written_now_records_the_index_width(settings):
    settings.BLIND_INDEX_BITS = 40
    fields = canary_fields()
    assert fields["index_bits"] == 40
    assert len(fields["index"]) == 16  # the canary's own index is always 64 bits


def test_a_changed_index_width_is_named_with_what_to_run(settings, canary, store, staff):
    registration = make_registration(store=store, created_by=staff)
    assert key_problems() == []
    settings.BLIND_INDEX_BITS = 48
    # What staff would see: the customer is not found any more.
    assert found_by_document() == []
    problems = key_problems()
    assert len(problems) == 1
    assert problems[0].startswith(CHANGED)
    [message] = check_keys(None)
    assert message.level == checks.CRITICAL and message.id == "simreg.E001"
    assert message.msg.startswith(CHANGED)

    output = rotate("--reindex")
    assert "Recomputed 1 blind indexes." in output
    assert "BLIND_INDEX_BITS (48 bits): the start-up check accepts them now." in output
    assert key_problems() == []
    assert KeyCanary.objects.order_by("-pk").first().index_bits == 48
    assert found_by_document() == [registration]


def test_a_change_that_keeps_the_number_of_hex_digits_is_caught_too(settings, canary):
    make_person()
    settings.BLIND_INDEX_BITS = 30  # still 8 hexadecimal digits, but other values
    assert any(p.startswith("BLIND_INDEX_BITS changed from 32 to 30: run") for p in key_problems())


def test_an_interrupted_reindex_keeps_refusing_the_new_width(settings, canary):
    for _ in range(3):
        make_person()
    settings.BLIND_INDEX_BITS = 48
    rotate("--reindex", "--batch-size", "1", "--limit-batches", "1")
    assert any(problem.startswith(CHANGED) for problem in key_problems())
    assert KeyCanary.objects.order_by("-pk").first().index_bits == 32
    rotate("--reindex", "--batch-size", "1")
    assert key_problems() == []
    assert {len(index) for index in Person.objects.values_list("document_index", flat=True)} == {12}


def test_a_canary_from_before_the_width_was_recorded_is_judged_by_the_stored_indexes(
    settings, canary
):
    KeyCanary.objects.filter(pk=canary.pk).update(index_bits=None)
    make_person()  # an index of 8 hexadecimal digits
    assert key_problems() == []
    settings.BLIND_INDEX_BITS = 48
    [problem] = key_problems()
    assert problem.startswith(
        "BLIND_INDEX_BITS is 48 but the stored blind indexes have 8 hexadecimal digits: run "
        "`python manage.py rotate_keys --reindex`"
    )
    rotate("--reindex")
    assert key_problems() == []
    assert KeyCanary.objects.get(pk=canary.pk).index_bits == 48


def record_index_bits(apps_registry) -> None:
    migration = importlib.import_module("registrations.migrations.0007_key_canary_index_bits")
    migration.record_index_bits(apps_registry, None)


def test_the_migration_records_the_width_the_stored_indexes_have(settings, canary):
    KeyCanary.objects.filter(pk=canary.pk).update(index_bits=None)
    make_person()
    record_index_bits(apps)
    assert KeyCanary.objects.get(pk=canary.pk).index_bits == 32


def test_the_migration_leaves_the_width_unknown_when_the_setting_disagrees(settings, canary):
    KeyCanary.objects.filter(pk=canary.pk).update(index_bits=None)
    make_person()
    settings.BLIND_INDEX_BITS = 64
    record_index_bits(apps)
    assert KeyCanary.objects.get(pk=canary.pk).index_bits is None
    assert any("stored blind indexes have 8 hexadecimal digits" in p for p in key_problems())


@pytest.mark.parametrize("bits", [0, 7, 65, 256])
def test_an_index_width_out_of_range_is_a_critical_problem(settings, canary, bits):
    settings.BLIND_INDEX_BITS = bits
    messages = check_keys(None)
    assert [(m.level, m.id) for m in messages] == [(checks.CRITICAL, "simreg.E002")]
    assert messages[0].msg == (
        f"BLIND_INDEX_BITS is {bits}: it must be a whole number from 8 to 64 (the stored index "
        "holds at most 64 bits)."
    )
    assert key_problems() == [messages[0].msg]  # start-up refuses it as well


@pytest.mark.parametrize("bits", [8, 64])
def test_the_widths_at_the_limits_are_accepted(settings, bits):
    settings.BLIND_INDEX_BITS = bits
    KeyCanary.objects.create(**canary_fields())
    assert check_keys(None) == []


def test_reindex_refuses_a_width_out_of_range_and_changes_nothing(settings, canary):
    person = make_person()
    index = Person.objects.get(pk=person.pk).document_index
    settings.BLIND_INDEX_BITS = 65
    with pytest.raises(CommandError, match="BLIND_INDEX_BITS is 65"):
        rotate("--reindex")
    assert Person.objects.get(pk=person.pk).document_index == index
    assert KeyCanary.objects.get(pk=canary.pk).index_bits == 32


# Start-up, as an operator runs it ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_start_up_stops_when_the_index_width_changed(settings):
    settings.BLIND_INDEX_BITS = 32
    KeyCanary.objects.create(**canary_fields())
    env = production_env(
        DATABASE_URL=database_url(),
        FIELD_ENCRYPTION_KEYS=",".join(settings.FIELD_ENCRYPTION_KEY),
        BLIND_INDEX_KEY=settings.BLIND_INDEX_KEY,
    )
    assert manage("check", env={**env, "BLIND_INDEX_BITS": "32"}).returncode == 0

    result = manage("check", env={**env, "BLIND_INDEX_BITS": "48"})
    assert result.returncode != 0
    assert CHANGED in result.stderr

    result = manage("check", env={**env, "BLIND_INDEX_BITS": "100"})
    assert result.returncode != 0
    assert re.search(r"simreg\.E002.*BLIND_INDEX_BITS is 100", result.stderr)
