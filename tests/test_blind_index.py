"""Exact-match look-ups on encrypted document numbers go through the blind index."""

import pytest
from django.db import connection
from django.test import override_settings

from registrations import selectors
from registrations.crypto import blind_index
from registrations.models import Registration
from tests.factories import make_person, make_registration

pytestmark = pytest.mark.django_db

# Valid HKIDs for twelve different people.
HKIDS = [
    "A1234563",
    "XA1234568",
    "Z683365A",
    "K1234560",
    "AB9876543",
    "A0000000",
    "B1111111",
    "C2222222",
    "D3333333",
    "E4444444",
    "G5555555",
    "H6666666",
]


def test_the_index_is_keyed_truncated_and_follows_normalisation():
    value = blind_index("hkid", "A1234563", bits=32)
    assert len(value) == 8
    assert blind_index("hkid", "a123456(3)", bits=32) == value
    assert blind_index("passport", "A1234563", bits=32) != value
    with override_settings(BLIND_INDEX_KEY="another key"):
        assert blind_index("hkid", "A1234563", bits=32) != value


@override_settings(BLIND_INDEX_BITS=2)
def test_look_up_finds_the_right_record_among_colliding_candidates(store, staff):
    registrations = {
        number: make_registration(
            store=store, created_by=staff, customer=make_person(document_number=number)
        )
        for number in HKIDS
    }
    wanted = registrations["K1234560"]
    index = wanted.customer.document_index
    colliding = Registration.objects.filter(customer__document_index=index).count()
    assert colliding > 1, "with 2 bits, twelve people must share index values"

    found = selectors.registration_list_by_document(
        document_type="hkid", document_number="k123456(0)"
    )
    assert [r.pk for r in found] == [wanted.pk]


def test_the_index_column_does_not_hold_the_number(store, staff):
    registration = make_registration(store=store, created_by=staff)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT document_index FROM registrations_person WHERE id = %s",
            [registration.customer_id],
        )
        (index,) = cursor.fetchone()
    assert index and "123456" not in index


def test_active_sims_are_counted_per_person_and_plan(store, staff):
    for status in ["approved", "pending", "rejected", "draft"]:
        make_registration(
            store=store,
            created_by=staff,
            status=status,
            **(
                {"reviewer": staff, "decided_at": "2026-01-01T00:00Z", "reason_code": "other"}
                if status in {"approved", "rejected"}
                else {}
            ),
        )
    make_registration(store=store, created_by=staff, status="pending", plan="service_plan")
    make_registration(
        store=store,
        created_by=staff,
        status="pending",
        customer=make_person(document_number="Z683365A"),
    )
    count = selectors.person_active_sim_count(
        document_type="hkid", document_number="A123456(3)", plan="prepaid"
    )
    assert count == 2
    new = make_registration(store=store, created_by=staff)  # a draft for the same person
    assert selectors.person_other_active_sim_count(registration=new) == 2
