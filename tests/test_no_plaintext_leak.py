"""After a whole registration, no identity value of the customer is anywhere in plaintext.

The flow runs through the pages with the test client and commits for real (transaction=True);
then the database (the raw SQLite file, or every text column on PostgreSQL), the uploaded-files
folder, the session table and the captured logs are searched for the customer's values.
"""

import json
import logging
import tempfile
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.urls import reverse

from registrations.models import Registration
from tests.factories import PNG, upload
from tests.storage import all_stored_bytes

NAME_EN = "WONG Siu Ling"
NAME_ZH = "黃小玲𠮷"
HKID_TYPED = "z683365(a)"
ADDRESS = "Flat 7C, 21 Leakproof Terrace, Tai Koo"
NEW_ADDRESS = "Flat 9D, 3 Quietwater Court, Sha Tin"
CONTACT_TYPED = "9456 7890"
NEW_CONTACT_TYPED = "5123 9876"
DECISION_COMMENT = f"Card Z683365(A) matches {NAME_EN}, seen with Mrs Quokkafield"

NEEDLES = [
    NAME_EN,
    "Siu Ling",
    NAME_ZH,
    "黃小玲",
    "Z683365",
    "z683365",
    ADDRESS,
    "Leakproof",
    NEW_ADDRESS,
    "Quietwater",
    "94567890",
    "9456 7890",
    "51239876",
    "5123 9876",
    "Quokkafield",
]


def needle_forms(needle: str) -> list[bytes]:
    """The needle as UTF-8, and as the \\u escapes a JSON column would hold."""
    forms = {needle.encode(), json.dumps(needle)[1:-1].encode()}
    return sorted(forms)


def found_in_bytes(data: bytes) -> list[str]:
    return [needle for needle in NEEDLES if any(form in data for form in needle_forms(needle))]


def temporary_files() -> set[Path]:
    """The files in the system's folder for temporary files (where an upload or a download
    would be spooled)."""
    return {path for path in Path(tempfile.gettempdir()).iterdir() if path.is_file()}


def drive_the_whole_flow(client, supervisor) -> Registration:
    """Start, three steps (with a mistake on the way), submit, receipt, copy, find, change."""
    response = client.post(reverse("counter-new"))
    reference = response.url.strip("/").split("/")[1]

    def at(name: str) -> str:
        return reverse(name, args=[reference])

    # The copy's bytes carry the customer's name and number, as a real scan would.
    scan = PNG + f"{NAME_EN} {NAME_ZH} Z683365(A) {ADDRESS}".encode()
    materials = {
        "customer_kind": "individual",
        "document_type": "hkid",
        "original_sighted": "on",
        "identity_copy": upload(scan),
        "sim_kind": "physical",
        "iccid": "8985200123456789017",
        "msisdn": "6123 4567",
        "plan": "prepaid",
        "action": "next",
    }
    assert client.post(at("counter-materials"), materials).status_code == 302
    assert (
        client.post(at("counter-channel"), {"channel": "counter", "action": "next"}).status_code
        == 302
    )
    identity = {
        "name_en": NAME_EN,
        "name_zh": NAME_ZH,
        "document_number": "z683365(0)",  # wrong check digit first
        "date_of_birth": "1988-03-09",
        "nationality": "HK",
        "address": ADDRESS,
        "contact_number": CONTACT_TYPED,
        "email": "",
        "declaration_accepted": "on",
        "action": "submit",
    }
    response = client.post(at("counter-identity"), identity)
    assert response.status_code == 200, "the wrong check digit is refused"
    assert client.post(at("counter-identity"), {**identity, "action": "save"}).status_code == 200
    identity["document_number"] = HKID_TYPED
    assert client.post(at("counter-identity"), {**identity, "action": "save"}).status_code == 302
    assert client.get(at("counter-identity")).status_code == 200
    assert client.post(at("counter-identity"), identity).status_code == 302

    registration = Registration.objects.get(reference=reference)
    assert registration.status == "pending"
    assert client.get(at("counter-record")).status_code == 200
    assert client.get(at("counter-receipt")).status_code == 200

    # A supervisor views the copy (with a reason), then approves on the record's page, with
    # a comment that repeats the customer's identity, as a hurried supervisor would.
    client.force_login(supervisor)
    copy = registration.documents.get()
    document_url = reverse("document-copy", args=[reference, copy.pk])
    response = client.post(document_url, {"reason": "review_submission"})
    assert b"".join(response.streaming_content) == scan
    response = client.post(
        reverse("review-decide", args=[reference]),
        {
            "outcome": "approved",
            "comment": DECISION_COMMENT,
            "submitted_at": registration.submitted_at.isoformat(),
        },
    )
    assert response.status_code == 302 and response.url == reverse("review-queue")
    registration.refresh_from_db()
    assert registration.status == "approved" and registration.reviewer == supervisor
    return registration


@pytest.mark.django_db(transaction=True)
def test_no_identity_value_is_left_in_plaintext_anywhere(
    client, staff, supervisor, private_storage, caplog
):
    caplog.set_level(logging.DEBUG)
    if connection.vendor == "sqlite":
        # Earlier tests' deleted rows may linger in free pages: start from a compact file.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM")

    temporary_before = temporary_files()
    client.force_login(staff)
    registration = drive_the_whole_flow(client, supervisor)
    client.force_login(staff)
    find = reverse("counter-find")
    record = reverse("counter-record", args=[registration.reference])
    response = client.post(
        find, {"by": "document", "document_type": "hkid", "document_number": HKID_TYPED}
    )
    assert record.strip("/").split("/")[-1] in response.content.decode()
    response = client.post(find, {"by": "msisdn", "msisdn": "6123 4567"})
    assert registration.reference in response.content.decode()
    response = client.post(
        reverse("counter-update", args=[registration.reference]),
        {"new_address": NEW_ADDRESS, "new_contact_number": NEW_CONTACT_TYPED},
    )
    assert response.status_code == 302

    leaks: dict[str, list[str]] = {}

    # The database.
    if connection.vendor == "sqlite":
        path = Path(connection.settings_dict["NAME"])
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
            if candidate.exists():
                found = found_in_bytes(candidate.read_bytes())
                if found:
                    leaks[str(candidate)] = found
    else:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND data_type IN "
                "('text', 'character varying', 'character', 'json', 'jsonb')"
            )
            columns = cursor.fetchall()
            assert columns
            for table, column in columns:
                for needle in NEEDLES:
                    cursor.execute(
                        f'SELECT 1 FROM "{table}" WHERE "{column}"::text LIKE %s LIMIT 1',
                        [f"%{needle}%"],
                    )
                    if cursor.fetchone():
                        leaks.setdefault(f"{table}.{column}", []).append(needle)

    # The uploaded files (and anything else) in the private storage: a folder, or a bucket.
    files = all_stored_bytes()
    assert files, "the copy was stored"
    for name, data in files.items():
        found = found_in_bytes(data)
        if found:
            leaks[f"private storage {name}"] = found
    if Path(private_storage).exists():
        for path in Path(private_storage).rglob("*"):
            if path.is_file() and (found := found_in_bytes(path.read_bytes())):
                leaks[str(path)] = found

    # No temporary file (an upload spooled to disk, a download buffered) holds them either.
    for path in temporary_files() - temporary_before:
        try:
            found = found_in_bytes(path.read_bytes())
        except OSError:
            continue  # gone already
        if found:
            leaks[f"temporary file {path.name}"] = found

    # Sessions, decoded.
    sessions = list(Session.objects.all())
    assert sessions
    for session in sessions:
        found = found_in_bytes(repr(session.get_decoded()).encode())
        if found:
            leaks[f"session {session.pk[:6]}…"] = found

    # Everything logged while the flow ran.
    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    found = found_in_bytes((caplog.text + logged).encode())
    if found:
        leaks["logs"] = found

    assert leaks == {}

    # The values are there, encrypted, and read back.
    registration.refresh_from_db()
    assert registration.customer.name_zh == NAME_ZH
    assert registration.customer.document_number == "Z683365A"
    assert registration.changes.get().new_address == NEW_ADDRESS
    assert registration.comment == DECISION_COMMENT
    assert registration.history.get(to_status="approved").comment == DECISION_COMMENT
