"""Find at the counter: a registration of any store, in any status but draft, by one key the
customer gives; each search an audit event naming the kind of key, never its value."""

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from registrations import crypto, roles, selectors
from registrations.models import AuditEvent
from tests.factories import (
    VALID_EID,
    VALID_ICCID,
    luhn_complete,
    make_approved,
    make_complete_draft,
    make_decided,
    make_pending_change,
    make_person,
    make_registration,
    make_user,
    url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]


@pytest.fixture
def clerk(other_store):
    """Counter staff of Causeway Bay; the records below are Mong Kok's."""
    return make_user(roles.COUNTER_STAFF, stores=[other_store], username="cwb-clerk")


@pytest.fixture
def clerk_client(client, clerk):
    client.force_login(clerk)
    return client


@pytest.fixture
def approved(store, staff, supervisor):
    return make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        msisdn="+85261234567",
        iccid=VALID_ICCID,
    )


def searched() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.SEARCHED))


def results(response) -> str:
    page = response.content.decode()
    return page[page.index('id="find-results"') :] if 'id="find-results"' in page else ""


@pytest.mark.parametrize(
    ("form", "key"),
    [
        (
            {"by": "document", "document_type": "hkid", "document_number": "a 123456 (3)"},
            "document",
        ),
        ({"by": "msisdn", "msisdn": "6123 4567"}, "msisdn"),
        ({"by": "sim", "sim": "8985 2001 2345 6789 017"}, "iccid"),
        ({"by": "reference"}, "reference"),
    ],
)
def test_a_registration_of_another_store_is_found_by_each_key(clerk_client, approved, form, key):
    if key == "reference":
        form = {**form, "reference": approved.reference.lower().replace("-", " ")}
    response = clerk_client.post(reverse("counter-find"), form)
    assert response.status_code == 200
    listed = results(response)
    assert approved.reference in listed
    assert "MK01" in listed and "Approved" in listed and "Prepaid" in listed
    assert "Physical SIM" in listed
    assert "•••• 4567" in listed, "the mobile number masked"
    assert "61234567" not in listed and "6123 4567" not in listed
    assert "Update information" in listed and "Replace the SIM" in listed
    [event] = searched()
    assert event.details == {"by": key, "matches": 1, "references": [approved.reference]}
    assert event.store_code == ""
    for value in ("6123", "A123456", VALID_ICCID[:10], approved.reference[:5].lower()):
        assert value not in repr(event.details).replace(approved.reference, "") + event.reason


def test_an_esim_is_found_by_its_eid(clerk_client, store, staff, supervisor):
    esim = make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        sim_kind="esim",
        iccid="",
        eid=VALID_EID,
    )
    response = clerk_client.post(reverse("counter-find"), {"by": "sim", "sim": VALID_EID})
    assert esim.reference in results(response)
    assert searched()[0].details["by"] == "eid"


def test_find_lists_every_status_but_draft_and_the_actions_each_allows(
    clerk_client, store, staff, supervisor
):
    person = {"document_number": "Z683365A"}
    records = {
        status: make_decided(
            status,
            store=store,
            created_by=staff,
            reviewer=supervisor,
            customer=make_person(**person),
            **({"terminated_at": approved_at} if status == "terminated" else {}),
            **({"reason_code": "other"} if status in {"rejected", "returned"} else {}),
        )
        for status, approved_at in [
            ("approved", None),
            ("rejected", None),
            ("returned", None),
            ("terminated", timezone.now()),
        ]
    }
    records["pending"] = make_registration(
        store=store, created_by=staff, status="pending", customer=make_person(**person)
    )
    draft = make_complete_draft(store=store, created_by=staff, customer=make_person(**person))
    response = clerk_client.post(
        reverse("counter-find"),
        {"by": "document", "document_type": "hkid", "document_number": "Z683365(A)"},
    )
    listed = results(response)
    for registration in records.values():
        assert registration.reference in listed
    assert draft.reference not in listed, "a draft is not found outside its store's lists"
    rows = {
        row.split("</td>")[0].split(">")[-1]: row
        for row in listed.split('<tr class="find-result">')[1:]
    }
    assert "Replace the SIM" in rows[records["approved"].reference]
    assert "Enquiry only" in rows[records["pending"].reference]
    assert "Enquiry only" in rows[records["terminated"].reference]
    assert searched()[0].details["matches"] == 5


def test_a_waiting_change_holds_back_all_but_a_loss_report(clerk_client, approved, staff):
    make_pending_change(approved, requested_by=staff, new={"email": "new@example.com"})
    response = clerk_client.post(reverse("counter-find"), {"by": "msisdn", "msisdn": "61234567"})
    listed = results(response)
    assert "Report a lost, stolen or damaged SIM" in listed
    assert "Update information" not in listed
    assert "waiting for a supervisor" in listed


def test_nothing_found_says_so_and_is_audited(clerk_client):
    response = clerk_client.post(reverse("counter-find"), {"by": "msisdn", "msisdn": "61234599"})
    assert "No registration matches." in response.content.decode()
    [event] = searched()
    assert event.details == {"by": "msisdn", "matches": 0, "references": []}


def test_find_checks_what_was_typed_beside_each_field(clerk_client):
    cases = [
        (
            {"by": "document", "document_type": "hkid", "document_number": "A123456(4)"},
            "document_number",
            "The check digit does not match this HKID number",
        ),
        ({"by": "msisdn", "msisdn": "12"}, "msisdn", "This is not a valid phone number"),
        ({"by": "sim", "sim": "8985200123456789018"}, "sim", "does not match the others"),
        ({"by": "sim", "sim": ""}, "sim", "Enter the ICCID"),
        ({"by": "reference", "reference": "ABC"}, "reference", "ten letters and digits"),
    ]
    for form, field, message in cases:
        response = clerk_client.post(reverse("counter-find"), form)
        assert response.status_code == 200
        assert message in str(response.context["form"].errors[field]), (form, field)
        assert response.context["form"][field].value() == form[field], "what was typed is kept"
    assert not searched()


def test_a_search_in_the_query_string_is_ignored(clerk_client, approved):
    response = clerk_client.get(reverse("counter-find") + "?by=msisdn&msisdn=61234567")
    assert response.status_code == 200
    assert approved.reference not in response.content.decode()
    assert not searched()


def test_the_results_link_by_reference_only(clerk_client, approved):
    response = clerk_client.post(
        reverse("counter-find"),
        {"by": "document", "document_type": "hkid", "document_number": "A123456(3)"},
    )
    listed = results(response)
    assert url("counter-service", approved) in listed
    for value in ("A123456", "CHAN", "陳大文", "61234567"):
        assert value not in listed


def test_browsing_lists_stay_scoped_to_ones_stores(clerk_client, approved):
    """Found for service, but not opened on the record page of another store."""
    assert clerk_client.get(url("counter-record", approved)).status_code == 404
    assert clerk_client.get(url("counter-receipt", approved)).status_code == 404


def test_other_roles_cannot_search(client, supervisor, approved):
    client.force_login(supervisor)
    response = client.post(reverse("counter-find"), {"by": "msisdn", "msisdn": "61234567"})
    assert response.status_code == 403
    assert not searched()


@override_settings(BLIND_INDEX_BITS=2)
def test_find_by_document_decrypts_only_the_document_number_of_each_candidate(
    clerk_client, store, staff, supervisor, decrypted
):
    numbers = ["A1234563", "XA1234568", "Z683365A", "K1234560", "AB9876543"]
    people = {
        number: make_approved(
            store=store,
            created_by=staff,
            reviewer=supervisor,
            customer=make_person(document_number=number, name_en=f"Person {i}"),
        )
        for i, number in enumerate(numbers)
    }
    indexes = [crypto.blind_index("hkid", number) for number in numbers]
    wanted = next(n for n, index in zip(numbers, indexes, strict=True) if indexes.count(index) > 1)
    decrypted.clear()
    with CaptureQueriesContext(connection) as queries:
        response = clerk_client.post(
            reverse("counter-find"),
            {"by": "document", "document_type": "hkid", "document_number": wanted},
        )
    listed = results(response)
    assert people[wanted].reference in listed
    assert sum(r.reference in listed for r in people.values()) == 1
    assert set(decrypted) == {"Person.document_number"}
    sql = " ".join(query["sql"] for query in queries.captured_queries)
    for name in ("name_en", "name_zh", "date_of_birth", "address", "contact_number", "email"):
        assert f'"registrations_person"."{name}"' not in sql


def test_find_by_document_lists_a_bounded_number_and_says_there_are_more(
    clerk_client, store, staff, supervisor, decrypted, monkeypatch
):
    """A company on service plans may hold any number of SIMs: the page shows the first ones,
    decrypts no more than it needs and says how to narrow the search."""
    monkeypatch.setattr(selectors, "FIND_LIMIT", 3)
    held = [
        make_approved(
            store=store,
            created_by=staff,
            reviewer=supervisor,
            customer=make_person(document_number="A1234563"),
            iccid=luhn_complete(f"89852001234567{i:04d}"),
            msisdn=f"+8526123400{i}",
            plan="service_plan",
        )
        for i in range(6)
    ]
    decrypted.clear()
    response = clerk_client.post(
        reverse("counter-find"),
        {"by": "document", "document_type": "hkid", "document_number": "A123456(3)"},
    )
    listed = results(response)
    assert [r.reference in listed for r in held] == [True, True, True, False, False, False]
    assert 'id="find-more"' in response.content.decode()
    assert len(decrypted) <= 4, "one past the limit, to know there are more"
    [event] = searched()
    assert len(event.details["references"]) == 3
