"""verify_audit from the command line and the verify form of the audit page: what they accept,
what they refuse, and that a refused request checks and records nothing. (Tampering is in
tests/test_audit_tampering.py, background verification in
tests/test_compliance_audit_jobs.py, exported files in tests/test_audit_export_verifier.py.)"""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from registrations.audit import Anchor, audit_record
from registrations.models import AuditEvent, AuditJob
from tests.factories import run_verify_audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def log(staff, store):
    return [audit_record(actor=staff, action="viewed", store=store) for _ in range(3)]


def test_a_head_printed_by_one_check_is_an_anchor_the_next_check_accepts(log):
    code, out, _ = run_verify_audit()
    assert code == 0
    heads = [line for line in out.splitlines() if line.startswith("HEAD ")]
    assert heads == [f"HEAD chain={log[-1].chain} seq=3 hash={log[-1].hash}"]
    code, out, err = run_verify_audit("--anchor", heads[0])
    assert code == 0, err
    assert f"Anchor {log[-1].chain}:3:{log[-1].hash} matches" in out


def test_an_anchor_of_chain_0_may_leave_out_the_chain():
    anchor = Anchor.parse("7:" + "a" * 64)
    assert (anchor.chain, anchor.seq, anchor.hash) == (0, 7, "a" * 64)
    assert Anchor.parse(f"HEAD chain=3 seq=9 hash={'B' * 64}") == Anchor(3, 9, "b" * 64)


@pytest.mark.parametrize(
    "anchor",
    ["6", "six:abc", "1:6:" + "a" * 63, "1:0:" + "a" * 64, "²:" + "a" * 64, "1:6:" + "g" * 64],
)
def test_a_malformed_anchor_is_refused_and_nothing_is_checked(log, anchor):
    with pytest.raises(CommandError, match="--anchor takes CHAIN:SEQ:HASH"):
        call_command("verify_audit", "--anchor", anchor, stdout=io.StringIO())
    assert not AuditEvent.objects.filter(action="verified").exists()


def test_an_anchor_is_for_the_database_not_for_a_file(tmp_path, log):
    with pytest.raises(CommandError, match="leave out --file"):
        call_command(
            "verify_audit", "--file", str(tmp_path / "a.jsonl"), "--anchor", f"1:{log[0].hash}"
        )


def test_the_page_refuses_a_malformed_anchor_next_to_the_field_and_starts_nothing(
    client, compliance, log
):
    client.force_login(compliance)
    before = AuditEvent.objects.count()
    response = client.post(reverse("audit-verify"), {"anchor": "6:not-a-hash"})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="error_1_id_anchor"' in page
    assert "Enter the chain, its position and the 64-character hash" in page
    assert 'value="6:not-a-hash"' in page  # what was typed is kept
    assert not AuditJob.objects.exists()
    assert AuditEvent.objects.count() == before


def test_verification_from_the_page_is_a_post_only(client, compliance):
    client.force_login(compliance)
    assert client.get(reverse("audit-verify")).status_code == 405
    assert not AuditJob.objects.exists()
