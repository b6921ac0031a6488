"""The benchmarks' fast seeding of the audit log leaves a log that verifies like a real one."""

import pytest

from benchmarks.audit_seed import seed_audit_events
from registrations.audit import audit_chain_check, audit_chain_verify, audit_record
from registrations.models import AuditChain, AuditEvent


@pytest.mark.django_db
def test_seeded_events_continue_the_chains_and_verify(staff, store):
    """Events seeded in bulk continue the heads already there, are sealed by a checkpoint, and
    an ordinary append after them still links on."""
    audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=store)
    store_codes = [store.code, "B001", "B002", "B003"]

    seeded = seed_audit_events(
        count=500,
        store_codes=store_codes,
        actor=staff,
        reference_for=lambda n: f"BENCH-{n:05d}",
        progress=lambda line: None,
    )

    assert seeded == 500
    assert AuditEvent.objects.count() == 501
    assert sum(AuditChain.objects.values_list("seq", flat=True)) == 501
    assert AuditEvent.objects.filter(store_code="B002").count() == 125
    check = audit_chain_check(actor=None)
    assert check.ok, check.problems
    assert check.checkpoints.checked == 1
    assert check.unsealed == 0
    audit_record(actor=staff, action=AuditEvent.Action.VIEWED, store=store)
    report = audit_chain_verify()
    assert report.ok, report.problem
    assert report.checked == 503
