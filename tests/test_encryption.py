"""Identity data is encrypted at rest; the library's silent failure modes are closed."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.db import connection
from django.test import override_settings

from registrations.crypto import DecryptionError, DoubleEncryptionError, decrypt_text, encrypt_text
from registrations.models import Person
from tests.factories import CUSTOMER, PERSON_ENCRYPTED_FIELDS, make_person

pytestmark = pytest.mark.django_db

ENCRYPTED_COLUMNS = PERSON_ENCRYPTED_FIELDS


def raw_person_row(pk: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(ENCRYPTED_COLUMNS)}, document_index FROM registrations_person "
            "WHERE id = %s",
            [pk],
        )
        names = [c[0] for c in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def test_raw_columns_hold_no_plaintext_identity_data():
    person = make_person()
    row = raw_person_row(person.pk)
    dump = repr(row)
    for value in [*CUSTOMER.values(), "1990-05-17", "A123456", "陳大文", "Nathan"]:
        assert value not in dump
    for column in ENCRYPTED_COLUMNS:
        assert row[column].startswith("gAAAAA"), column


def test_values_read_back_exactly_including_characters_outside_the_bmp():
    person = make_person()
    again = Person.objects.get(pk=person.pk)
    assert again.name_zh == "陳大文𠮷"
    assert again.document_number == "A1234563"
    assert str(again.date_of_birth) == "1990-05-17"


def test_a_wrong_key_raises_instead_of_returning_ciphertext():
    person = make_person()
    with override_settings(FIELD_ENCRYPTION_KEY=[Fernet.generate_key().decode()]):
        with pytest.raises(DecryptionError, match="FIELD_ENCRYPTION_KEYS"):
            Person.objects.get(pk=person.pk)


def test_an_old_key_kept_second_still_decrypts_and_the_first_key_encrypts(settings):
    old = settings.FIELD_ENCRYPTION_KEY
    person = make_person()
    new_key = Fernet.generate_key().decode()
    with override_settings(FIELD_ENCRYPTION_KEY=[new_key, *old]):
        assert Person.objects.get(pk=person.pk).name_en == CUSTOMER["name_en"]
        fresh = make_person(name_en="LEE Siu Ming")
    raw = raw_person_row(fresh.pk)["name_en"]
    assert Fernet(new_key).decrypt(raw.encode()) == b"LEE Siu Ming"


def test_a_value_is_never_encrypted_twice():
    person = make_person()
    # Read, then save again: the column must decrypt once to the plaintext.
    Person.objects.get(pk=person.pk).save()
    assert decrypt_text(raw_person_row(person.pk)["name_en"]) == CUSTOMER["name_en"]
    # Ciphertext handed in as if it were a value is refused.
    person.name_en = encrypt_text("CHAN Tai Man")
    with pytest.raises(DoubleEncryptionError):
        person.save()


def test_filtering_on_an_encrypted_field_is_an_error_not_an_empty_result():
    make_person()
    with pytest.raises(FieldError, match="blind index"):
        list(Person.objects.filter(name_en="CHAN Tai Man"))


def test_text_that_merely_looks_like_a_token_is_stored_encrypted_not_refused():
    """A customer's input can never cause an error page, however it is shaped."""
    from cryptography.fernet import Fernet

    foreign = Fernet(Fernet.generate_key()).encrypt(b"someone else's secret").decode()
    person = make_person(address=foreign)
    assert Person.objects.get(pk=person.pk).address == foreign
    assert decrypt_text(raw_person_row(person.pk)["address"]) == foreign
