"""Breach records: compliance admins log a suspected breach, open it, mark it notified and close
it; the audit log names who did each of these, never what was typed; the description is stored
encrypted; the policy's deadline for telling the regulator flags a notice that is overdue."""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from registrations import roles
from registrations.models import AuditEvent, BreachRecord
from tests.factories import make_user

pytestmark = pytest.mark.django_db

DESCRIPTION = "Printout naming 陳𠮷 and 𠝹 Fernhollow left at the Quarrywick branch"
NEEDLES = ["陳𠮷", "𠝹", "Fernhollow", "Quarrywick"]
LOCAL = "%Y-%m-%dT%H:%M"


def local(moment: datetime.datetime) -> str:
    return timezone.localtime(moment).strftime(LOCAL)


def form_data(**overrides) -> dict[str, str]:
    data = {
        "found_at": local(timezone.now() - datetime.timedelta(hours=2)),
        "occurred_at": "",
        "systems_affected": "Counter tablet at the store",
        "records_affected": "40",
        "description": DESCRIPTION,
        "authority": "",
        "notified_at": "",
        "subscribers_told_at": "",
        "status": "open",
    }
    data.update(overrides)
    return data


@pytest.fixture
def compliance_client(client, compliance):
    client.force_login(compliance)
    return client


def make_breach(user, *, found_at=None, **values) -> BreachRecord:
    return BreachRecord.objects.create(
        found_at=found_at or timezone.now(),
        systems_affected="Mail server",
        records_affected=12,
        description=DESCRIPTION,
        recorded_by=user,
        **values,
    )


def events(action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def plaintext_in_database() -> dict[str, list[str]]:
    """Every text column of every table, searched for the description's words."""
    found: dict[str, list[str]] = {}
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                quoted_table = connection.ops.quote_name(table)
                quoted_column = connection.ops.quote_name(column.name)
                cast = "::text" if connection.vendor == "postgresql" else ""
                for needle in NEEDLES:
                    cursor.execute(
                        f"SELECT 1 FROM {quoted_table} "  # names from introspection
                        f"WHERE {quoted_column}{cast} LIKE %s LIMIT 1",
                        [f"%{needle}%"],
                    )
                    if cursor.fetchone():
                        found.setdefault(f"{table}.{column.name}", []).append(needle)
    return found


@pytest.mark.parametrize("role", [roles.COUNTER_STAFF, roles.SUPERVISOR, None])
def test_only_compliance_admins_reach_breach_records(client, store, compliance, role):
    """Counter staff, supervisors and a superuser without the role are refused every page."""
    breach = make_breach(compliance)
    if role is None:
        user = make_user(None, is_superuser=True, is_staff=True)
    else:
        user = make_user(role, stores=[store], supervises=[store])
    client.force_login(user)
    for name, args in [
        ("breach-list", []),
        ("breach-new", []),
        ("breach-detail", [breach.pk]),
        ("breach-edit", [breach.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 403, name
    assert client.post(reverse("breach-new"), form_data()).status_code == 403
    assert BreachRecord.objects.count() == 1
    assert not events(AuditEvent.Action.VIEWED)


def test_recording_a_breach_is_audited_by_field_name_and_its_description_is_encrypted(
    compliance_client, compliance
):
    response = compliance_client.post(reverse("breach-new"), form_data())
    breach = BreachRecord.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("breach-detail", args=[breach.pk])
    assert breach.description == DESCRIPTION
    assert breach.recorded_by == compliance
    assert breach.status == BreachRecord.Status.OPEN
    assert breach.records_affected == 40

    (recorded,) = events(AuditEvent.Action.BREACH_RECORDED)
    assert recorded.actor == compliance
    assert recorded.fields == [
        "description",
        "found_at",
        "records_affected",
        "systems_affected",
    ]
    assert recorded.details == {"breach": breach.pk, "status": "open"}
    # Nothing typed is in the audit log or, in plaintext, anywhere in the database.
    assert plaintext_in_database() == {}
    for event in AuditEvent.objects.all():
        text = f"{event.reason} {event.fields} {event.details}"
        assert "Counter tablet" not in text and "40" not in str(event.details)


def test_opening_a_breach_record_names_who_opened_it(compliance_client, compliance):
    breach = make_breach(compliance)
    response = compliance_client.get(reverse("breach-detail", args=[breach.pk]))
    assert response.status_code == 200
    assert DESCRIPTION in response.content.decode()
    (viewed,) = events(AuditEvent.Action.VIEWED)
    assert viewed.actor_username == compliance.username
    assert viewed.details == {"breach": breach.pk, "page": "breach_detail"}
    assert viewed.registration_reference == ""

    # The update form shows the stored description too: an opening as well.
    assert compliance_client.get(reverse("breach-edit", args=[breach.pk])).status_code == 200
    assert [event.details["page"] for event in events(AuditEvent.Action.VIEWED)] == [
        "breach_detail",
        "breach_edit",
    ]


def test_the_list_is_newest_first_paged_and_opens_nothing(compliance_client, compliance):
    now = timezone.now()
    older = make_breach(compliance, found_at=now - datetime.timedelta(days=3))
    newer = make_breach(compliance, found_at=now - datetime.timedelta(days=1))
    response = compliance_client.get(reverse("breach-list"))
    assert response.status_code == 200
    rows = [breach.pk for breach, _notice in response.context["rows"]]
    assert rows == [newer.pk, older.pk]
    assert DESCRIPTION not in response.content.decode()
    assert not events(AuditEvent.Action.VIEWED)
    for _ in range(30):
        make_breach(compliance, found_at=now - datetime.timedelta(days=10))
    second = compliance_client.get(reverse("breach-list") + "?page=2")
    assert second.context["page"].number == 2
    assert len(second.context["rows"]) == 32 - 25


def test_marking_notified_and_closing_are_audited_updates(compliance_client, compliance):
    breach = make_breach(compliance, found_at=timezone.now() - datetime.timedelta(hours=5))
    notified = local(timezone.now() - datetime.timedelta(hours=1))
    data = form_data(
        found_at=local(breach.found_at),
        systems_affected=breach.systems_affected,
        records_affected="12",
        authority="pcpd_hk",
        notified_at=notified,
    )
    response = compliance_client.post(reverse("breach-edit", args=[breach.pk]), data)
    assert response.status_code == 302
    breach.refresh_from_db()
    assert breach.authority == BreachRecord.Authority.PCPD_HK
    assert local(breach.notified_at) == notified
    (updated,) = events(AuditEvent.Action.BREACH_UPDATED)
    assert updated.fields == ["authority", "notified_at"]
    assert updated.details == {"breach": breach.pk, "status": "open"}

    told = local(timezone.now())
    data |= {"subscribers_told": "on", "subscribers_told_at": told, "status": "closed"}
    compliance_client.post(reverse("breach-edit", args=[breach.pk]), data)
    breach.refresh_from_db()
    assert breach.status == BreachRecord.Status.CLOSED
    assert breach.closed_at is not None
    assert breach.subscribers_told
    last = events(AuditEvent.Action.BREACH_UPDATED)[-1]
    assert last.fields == ["status", "subscribers_told", "subscribers_told_at"]
    assert last.details == {"breach": breach.pk, "status": "closed"}

    # Saving again with nothing changed writes nothing.
    compliance_client.post(reverse("breach-edit", args=[breach.pk]), data)
    assert len(events(AuditEvent.Action.BREACH_UPDATED)) == 2


def test_bad_input_is_kept_with_a_message_beside_each_field(compliance_client):
    found = timezone.now() - datetime.timedelta(hours=3)
    data = form_data(
        found_at=local(found),
        occurred_at=local(found + datetime.timedelta(hours=1)),
        records_affected="about forty",
        notified_at=local(found + datetime.timedelta(hours=1)),
        subscribers_told_at=local(found),
        systems_affected="Billing 𠝹 export",
    )
    response = compliance_client.post(reverse("breach-new"), data)
    assert response.status_code == 400
    form = response.context["form"]
    assert set(form.errors) == {
        "occurred_at",
        "records_affected",
        "authority",
        "subscribers_told",
    }
    page = response.content.decode()
    assert "A breach cannot happen after it was found." in page
    assert "Choose the authority that was notified." in page
    # What was typed is still there.
    assert "about forty" in page and "Billing 𠝹 export" in page and DESCRIPTION in page
    assert not BreachRecord.objects.exists()
    assert not events(AuditEvent.Action.BREACH_RECORDED)

    empty = compliance_client.post(reverse("breach-new"), {})
    assert empty.status_code == 400
    assert {"found_at", "systems_affected", "records_affected", "status"} <= set(
        empty.context["form"].errors
    )


def test_a_notice_past_72_hours_is_overdue_under_the_philippine_profile(
    compliance_client, compliance, settings
):
    settings.SIMREG_POLICY = "ph"
    now = timezone.now()
    overdue = make_breach(compliance, found_at=now - datetime.timedelta(hours=73))
    in_time = make_breach(compliance, found_at=now - datetime.timedelta(hours=71))
    late = make_breach(
        compliance,
        found_at=now - datetime.timedelta(hours=100),
        authority=BreachRecord.Authority.NPC_PH,
        notified_at=now - datetime.timedelta(hours=20),
    )
    prompt = make_breach(
        compliance,
        found_at=now - datetime.timedelta(hours=100),
        authority=BreachRecord.Authority.NPC_PH,
        notified_at=now - datetime.timedelta(hours=90),
    )
    page = compliance_client.get(reverse("breach-detail", args=[overdue.pk])).content.decode()
    assert 'data-notice="overdue"' in page
    assert "within 72 hours" in page
    page = compliance_client.get(reverse("breach-detail", args=[in_time.pk])).content.decode()
    assert 'data-notice="pending"' in page and 'data-notice="overdue"' not in page
    page = compliance_client.get(reverse("breach-detail", args=[late.pk])).content.decode()
    assert 'data-notice="late"' in page
    page = compliance_client.get(reverse("breach-detail", args=[prompt.pk])).content.decode()
    assert 'data-notice="notified"' in page

    listed = compliance_client.get(reverse("breach-list"))
    flags = {breach.pk: (notice.overdue, notice.late) for breach, notice in listed.context["rows"]}
    assert flags == {
        overdue.pk: (True, False),
        in_time.pk: (False, False),
        late.pk: (False, True),
        prompt.pk: (False, False),
    }


def test_hong_kong_sets_no_deadline_so_nothing_is_overdue(compliance_client, compliance, settings):
    settings.SIMREG_POLICY = "hk"
    breach = make_breach(compliance, found_at=timezone.now() - datetime.timedelta(days=30))
    page = compliance_client.get(reverse("breach-detail", args=[breach.pk])).content.decode()
    assert 'data-notice="overdue"' not in page
    assert "as soon as practicable" in page


def test_compliance_home_and_audit_log_link_to_the_breach_records(compliance_client):
    link = f'href="{reverse("breach-list")}"'
    assert link in compliance_client.get(reverse("home")).content.decode()
    assert link in compliance_client.get(reverse("audit-list")).content.decode()
