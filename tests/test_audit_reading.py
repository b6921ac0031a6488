"""Verification and export read events fast, joining strings instead of encoding dictionaries:
what they produce must be, byte for byte, the canonical JSON an auditor recomputes."""

import json

import pytest

from registrations.audit import Origin, audit_chain_verify, audit_record
from registrations.audit.chain import CONTENT_KEYS, canonical_json, event_content
from registrations.audit.export import COLUMNS
from registrations.audit.reading import chain_rows, content_json, export_json, filtered_rows
from registrations.models import AuditEvent

pytestmark = pytest.mark.django_db

AWKWARD = [
    {},
    {"note": 'quote " backslash \\ slash / tab \t newline \n nul-free \x01 \x1f'},
    {"名字": "陳大文 𠮷𠝹", "z": [3, 2, 1], "a": {"b": None, "a": True, "c": 1.5}},
    {"emoji": "🙂", "big": 2**62, "neg": -7, "zero": 0.0, "list": ["x", {"y": []}]},
]


@pytest.mark.parametrize("details", AWKWARD)
def test_the_fast_reading_gives_the_canonical_json_of_each_event(staff, store, details):
    event = audit_record(
        actor=staff,
        action=AuditEvent.Action.REVEALED,
        origin=Origin(ip="2001:db8::1", user_agent='Mozilla "5.0" 🙂'),
        store=store,
        reason="客戶查詢 𠮷 =1+1",
        fields=["document_number", "name_zh"],
        details=details,
    )
    stored = AuditEvent.objects.get(pk=event.pk)
    [row] = [row for row in chain_rows(event.chain) if row.id == event.pk]
    assert content_json(row) == canonical_json(event_content(stored))
    payload = {**event_content(stored), "id": stored.id, "chain": stored.chain}
    payload.update(seq=stored.seq, prev_hash=stored.prev_hash, hash=stored.hash)
    assert export_json(row) == canonical_json(payload)
    assert json.loads(export_json(row))["details"] == json.loads(canonical_json(details))
    assert audit_chain_verify().ok


def test_an_event_without_user_or_address_reads_as_nulls(store):
    event = audit_record(actor=None, actor_username="ghost", action="login_failed", store=store)
    [row] = list(chain_rows(event.chain))
    content = json.loads(content_json(row))
    assert content["actor_id"] is None and content["ip"] is None
    assert set(content) == set(CONTENT_KEYS)


def test_the_exported_columns_are_the_fields_of_a_read_row():
    assert ("id", "chain", "seq", *CONTENT_KEYS, "prev_hash", "hash") == COLUMNS


def test_filtered_reading_pages_through_every_match_in_order(staff, store, monkeypatch):
    from registrations.audit import reading

    monkeypatch.setattr(reading, "ROWS_PER_QUERY", 7)
    ids = [audit_record(actor=staff, action="viewed", store=store).id for _ in range(30)]
    audit_record(actor=staff, action="approved", store=store)
    viewed = AuditEvent.objects.filter(action="viewed")
    assert [row.id for row in filtered_rows(viewed, upto=ids[-1])] == ids
    assert [row.id for row in filtered_rows(viewed, upto=ids[9])] == ids[:10]
    assert [row.seq for row in chain_rows(AuditEvent.objects.get(pk=ids[0]).chain)] == list(
        range(1, 32)
    )
