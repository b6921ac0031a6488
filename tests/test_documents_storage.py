"""Document copies and audit exports in the private storage: a local folder, or a bucket of
S3-compatible object storage. What the storage holds is ciphertext under random names with no
URL; a storage that cannot be reached is a message beside the upload, a health and start-up
error, never a lost entry or a 500.

Every test runs on the folder; with SIMREG_TEST_S3_ENDPOINT (`make test-s3`) the same tests run
on a bucket of that server, over HTTP, and the tests marked `needs_s3` run too.
"""

import datetime
import io
import subprocess
import sys

import pytest
import requests
from django.core import checks
from django.urls import reverse
from django.utils import timezone

from registrations import documents, roles
from registrations.audit import Origin, audit_record
from registrations.crypto import FRAMES_MAGIC, decrypt_bytes
from registrations.documents import STORED_NAME
from registrations.models import AuditEvent, AuditJob, DocumentCopy, PendingChange, Registration
from registrations.services import compliance
from registrations.services.jobs import worker_heartbeat_record
from registrations.storage import PrivateS3Storage, private_storage
from tests.factories import (
    PNG,
    make_approved,
    make_complete_draft,
    make_registration,
    make_user,
    materials_form,
    start_draft,
    upload,
)
from tests.jobs import export_from_page
from tests.storage import (
    BROKEN,
    all_stored_bytes,
    break_storage,
    closed_port,
    s3_client,
    s3_key,
    s3_mode,
    stored_names,
)
from tests.test_startup import ROOT, production_env

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

needs_s3 = pytest.mark.skipif(
    not s3_mode(),
    reason="needs an S3-compatible server: `make test-s3` runs it (SIMREG_TEST_S3_ENDPOINT)",
)
NOT_STORED = "The document copy could not be stored; try again. Nothing you typed was lost."
# What a photo of an identity card shows, in the bytes of the upload.
MARKER = b"CHAN Tai Man A123456(3)"


@pytest.fixture(autouse=True)
def _one_attempt(monkeypatch):
    """An endpoint that does not answer is given up on after one attempt, not three."""
    monkeypatch.setattr(PrivateS3Storage, "ATTEMPTS", 1)


@pytest.fixture(params=BROKEN)
def broken(request, settings, tmp_path):
    """The private storage, made unusable in each way of tests.storage.BROKEN."""
    if request.param == "no_bucket" and not s3_mode():
        pytest.skip("a missing bucket needs an S3-compatible server: `make test-s3`")
    break_storage(settings, tmp_path, request.param)
    return request.param


def materials_url(registration: Registration) -> str:
    return reverse("counter-materials", args=[registration.reference])


def upload_scan(client, data: bytes = PNG + MARKER) -> DocumentCopy:
    registration = start_draft(client)
    response = client.post(materials_url(registration), materials_form(identity_copy=upload(data)))
    assert response.status_code == 302
    return registration.documents.get()


# What is stored --------------------------------------------------------------------------------


def test_stored_names_are_random_and_say_nothing_of_the_file(staff_client):
    first = upload_scan(staff_client)
    second = upload_scan(staff_client)
    for copy in (first, second):
        assert STORED_NAME.fullmatch(copy.stored_name)
        assert "hkid" not in copy.stored_name and "png" not in copy.stored_name
    assert first.stored_name != second.stored_name, "the same file twice: two random names"
    assert stored_names() == {first.stored_name, second.stored_name}
    assert set(all_stored_bytes()) == {
        f"documents/{first.stored_name}",
        f"documents/{second.stored_name}",
    }


def test_the_private_storage_gives_no_url(staff_client):
    copy = upload_scan(staff_client)
    with pytest.raises(ValueError, match="no URL"):
        private_storage().url(documents.storage_name(copy.stored_name))


@needs_s3
def test_the_object_in_the_bucket_is_ciphertext(staff_client, settings):
    copy = upload_scan(staff_client)
    # Read beside the app, with a client of its own, as anyone with the bucket's keys could.
    stored = (
        s3_client()
        .get_object(Bucket=settings.S3_TEST_BUCKET, Key=s3_key(f"documents/{copy.stored_name}"))[
            "Body"
        ]
        .read()
    )
    assert MARKER not in stored and b"CHAN" not in stored and b"A123456" not in stored
    assert not stored.startswith(PNG[:8]), "not the image"
    assert decrypt_bytes(stored) == PNG + MARKER


@needs_s3
def test_the_object_is_not_public(staff_client, settings):
    copy = upload_scan(staff_client)
    key = s3_key(f"documents/{copy.stored_name}")
    # Anonymous: no signature, as anyone who learnt the object's address would ask.
    refused = requests.get(
        f"{settings.S3_TEST_ENDPOINT}/{settings.S3_TEST_BUCKET}/{key}", timeout=10
    )
    assert refused.status_code == 403
    assert PNG[:8] not in refused.content
    grants = s3_client().get_object_acl(Bucket=settings.S3_TEST_BUCKET, Key=key)["Grants"]
    for grant in grants:
        assert "AllUsers" not in grant["Grantee"].get("URI", "")
        assert "AuthenticatedUsers" not in grant["Grantee"].get("URI", "")


def test_an_audit_export_is_kept_encrypted_in_the_private_storage_and_purged(client, store, staff):
    compliance_user = make_user(roles.COMPLIANCE_ADMIN, username="compliance")
    clerk = make_user(roles.COUNTER_STAFF, stores=[store], username="zebra.wong")
    audit_record(actor=clerk, action="login", origin=Origin(ip="10.0.0.7", user_agent="UA"))
    client.force_login(compliance_user)
    response = export_from_page(client, {"format": "csv"})
    assert "zebra.wong" in b"".join(response.streaming_content).decode("utf-8-sig")
    job = AuditJob.objects.get()
    [(name, stored)] = [(n, d) for n, d in all_stored_bytes().items() if n.startswith("audit-")]
    assert name == job.stored_name
    assert stored.startswith(FRAMES_MAGIC)
    assert b"zebra.wong" not in stored and b"10.0.0.7" not in stored
    later = timezone.now() + datetime.timedelta(hours=25)
    assert compliance.audit_exports_purge(now=later) == 1
    assert not any(n.startswith("audit-") for n in all_stored_bytes())


# When the storage cannot be used ---------------------------------------------------------------


def test_a_storage_that_fails_gives_the_message_beside_the_upload_and_keeps_the_entry(
    staff_client, broken
):
    registration = start_draft(staff_client)
    response = staff_client.post(
        materials_url(registration), materials_form(msisdn="6123 4567", iccid="8985200123456789017")
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["identity_copy"] == [NOT_STORED]
    # What was typed is on the page again; nothing is half-stored.
    assert form["msisdn"].value() == "6123 4567"
    assert form["iccid"].value() == "8985200123456789017"
    assert form["document_type"].value() == "hkid"
    assert NOT_STORED in response.content.decode()
    assert not DocumentCopy.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_UPLOADED).exists()
    registration.refresh_from_db()
    assert registration.status == "draft"


def test_a_renewed_copy_the_storage_cannot_take_is_a_message_and_no_change(
    staff_client, store, staff, supervisor, settings, tmp_path
):
    approved = make_approved(store=store, created_by=staff, reviewer=supervisor)
    break_storage(settings, tmp_path, "no_answer")
    response = staff_client.post(
        reverse("counter-update", args=[approved.reference]),
        {
            "new_document_type": "passport",
            "new_document_number": "k12345678",
            "new_address": "Flat 9D, 3 Quietwater Court, Sha Tin",
            "renewed_copy": upload(PNG, name="passport.png"),
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["renewed_copy"] == [NOT_STORED]
    assert form["new_address"].value() == "Flat 9D, 3 Quietwater Court, Sha Tin"
    assert form["new_document_number"].value() == "k12345678"
    assert not PendingChange.objects.exists()


def test_healthz_reports_a_storage_that_fails_as_unavailable(client, broken):
    worker_heartbeat_record(now=timezone.now())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {
        "database": "ok",
        "storage": "unavailable",
        "keys": "ok",
        "worker": "ok",
    }


def test_the_deploy_check_names_a_storage_that_fails(broken):
    errors = checks.run_checks(tags=["storage"], include_deployment_checks=True)
    assert [error.id for error in errors] == ["simreg.E003"]
    assert "The private storage of the document copies cannot be used" in errors[0].msg


def test_the_deploy_check_passes_with_a_working_storage():
    assert checks.run_checks(tags=["storage"], include_deployment_checks=True) == []


def test_a_copy_cannot_be_shown_while_the_storage_fails_and_the_attempt_is_audited(
    staff_client, store, staff, settings, tmp_path
):
    registration = make_complete_draft(store=store, created_by=staff)
    copy = registration.documents.get()
    break_storage(settings, tmp_path, "no_answer")
    url = reverse("document-copy", args=[registration.reference, copy.pk])
    response = staff_client.post(url, {"reason": "check_against_original"})
    # Unavailable for now (503), not gone (410): the copy is still in the storage.
    assert response.status_code == 503
    page = response.content.decode()
    assert "The document storage cannot be reached just now" in page
    assert "Ask the counter for a new upload" not in page
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.DOCUMENT_VIEWED)
    assert event.details["available"] is False
    assert event.details["storage"] == "unreachable"


def test_a_draft_is_discarded_while_the_storage_fails_its_file_left_for_the_purge(
    staff_client, store, staff, settings, tmp_path, django_capture_on_commit_callbacks
):
    registration = make_complete_draft(store=store, created_by=staff)
    working = settings.STORAGES
    break_storage(settings, tmp_path, "no_answer")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("counter-discard", args=[registration.reference]), {"confirm": "discard"}
        )
    assert response.status_code == 302
    assert not Registration.objects.filter(pk=registration.pk).exists()
    settings.STORAGES = working
    [orphan] = stored_names()
    later = timezone.now() + datetime.timedelta(hours=2)
    assert documents.orphan_files(known=set(), now=later) == [orphan]


def test_a_rotation_stops_with_a_message_while_the_storage_fails(store, staff, settings, tmp_path):
    from django.core.management import CommandError, call_command

    registration = make_registration(store=store, created_by=staff)
    make_complete_draft(store=store, created_by=staff)
    assert registration.pk
    break_storage(settings, tmp_path, "no_answer")
    with pytest.raises(CommandError, match="Run rotate_keys again once the storage answers"):
        call_command("rotate_keys", stdout=io.StringIO())


# At start-up -----------------------------------------------------------------------------------


def start_wsgi(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "import simreg.wsgi"],
        cwd=ROOT,
        env=production_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_bucket_that_does_not_answer_stops_start_up_with_one_line():
    result = start_wsgi(
        SIMREG_DOCUMENT_STORAGE="s3",
        AWS_STORAGE_BUCKET_NAME="simreg-documents",
        AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}",
        AWS_S3_REGION_NAME="us-east-1",
        AWS_ACCESS_KEY_ID="simreg-test",
        AWS_SECRET_ACCESS_KEY="simreg-test-secret",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert line == (
        "simreg cannot start: The private storage of the document copies cannot be used: "
        "EndpointConnectionError while looking for the bucket simreg-documents."
    )
    assert "simreg-test-secret" not in result.stderr


def test_s3_without_a_bucket_name_stops_start_up_naming_the_variable():
    result = start_wsgi(SIMREG_DOCUMENT_STORAGE="s3", AWS_STORAGE_BUCKET_NAME=None)
    assert result.returncode == 1
    assert "AWS_STORAGE_BUCKET_NAME is not set" in result.stderr
    assert "Traceback" not in result.stderr
