"""Compliance admins browse the audit log: filters, pages, and never an identity value."""

import datetime
import re
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registrations import roles
from registrations.audit import Origin, audit_record
from registrations.models import AuditEvent, AuditJob
from tests.factories import CUSTOMER, make_registration, make_user
from tests.jobs import export_from_page, run_jobs
from tests.urls import app_url_patterns

pytestmark = pytest.mark.django_db

LIST = reverse("audit-list")
YEARS = "Enter a time between the years 2000 and 2999."
HKT = datetime.timezone(datetime.timedelta(hours=8))


@pytest.fixture
def compliance_client(client, compliance):
    client.force_login(compliance)
    return client


def events_on(page: str) -> list[int]:
    """Event numbers in the order the page lists them."""
    body = page.split('id="audit-events"', 1)[1]
    return [int(n) for n in re.findall(r"<tr>\s*<td>(\d+)</td>", body)]


def record_at(moment: datetime.datetime, **kwargs) -> AuditEvent:
    with mock.patch("django.utils.timezone.now", return_value=moment):
        return audit_record(**kwargs)


def test_compliance_admin_sees_the_log_newest_first(compliance_client, staff):
    first = audit_record(actor=staff, action=AuditEvent.Action.LOGIN)
    second = audit_record(actor=staff, action=AuditEvent.Action.LOGOUT)
    response = compliance_client.get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    # Signing the compliance admin in was the first event of all.
    assert events_on(page) == [second.id, first.id, first.id - 1]
    assert "Signed out" in page and "Signed in" in page
    assert second.hash[:12] in page


@pytest.mark.parametrize("role", [roles.COUNTER_STAFF, roles.SUPERVISOR, None])
def test_other_roles_can_neither_browse_export_nor_verify(client, role):
    user = make_user(role, is_superuser=role is None, is_staff=role is None)
    client.force_login(user)
    assert client.get(LIST).status_code == 403
    assert client.post(reverse("audit-export"), {"format": "csv"}).status_code == 403
    assert client.post(reverse("audit-verify")).status_code == 403
    assert not AuditJob.objects.exists()
    run_jobs()
    assert not AuditEvent.objects.filter(
        action__in=[AuditEvent.Action.EXPORTED, AuditEvent.Action.VERIFIED]
    ).exists()


def test_an_anonymous_visitor_is_sent_to_the_login(client):
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_time_range_is_read_in_hong_kong_time(compliance_client, staff):
    morning = record_at(
        datetime.datetime(2025, 3, 1, 9, 30, tzinfo=HKT), actor=staff, action="login"
    )
    noon = record_at(datetime.datetime(2025, 3, 1, 12, 0, tzinfo=HKT), actor=staff, action="login")
    page = compliance_client.get(
        LIST, {"since": "2025-03-01T09:00", "until": "2025-03-01T10:00"}
    ).content.decode()
    assert events_on(page) == [morning.id]
    assert "2025-03-01 09:30:00" in page  # shown in local time too
    page = compliance_client.get(
        LIST, {"since": "2025-03-01T10:00", "until": "2025-03-02T00:00"}
    ).content.decode()
    assert events_on(page) == [noon.id]


def test_until_is_exclusive_so_consecutive_ranges_do_not_overlap(compliance_client, staff):
    edge = record_at(datetime.datetime(2025, 3, 1, 10, 0, tzinfo=HKT), actor=staff, action="login")
    before = compliance_client.get(LIST, {"until": "2025-03-01T10:00"}).content.decode()
    after = compliance_client.get(LIST, {"since": "2025-03-01T10:00"}).content.decode()
    assert edge.id not in events_on(before)
    assert edge.id in events_on(after)


def test_filters_by_actor_action_store_and_record(
    compliance_client, store, other_store, staff, supervisor
):
    registration = make_registration(store=store, created_by=staff)
    viewed = audit_record(actor=staff, action="viewed", registration=registration)
    approved = audit_record(actor=supervisor, action="approved", registration=registration)
    elsewhere = audit_record(actor=supervisor, action="listed", store=other_store)
    login = audit_record(actor=staff, action="login")

    def listed(**filters):
        return events_on(compliance_client.get(LIST, filters).content.decode())

    assert listed(actor="counter") == [login.id, viewed.id]
    assert listed(action="approved") == [approved.id]
    assert listed(store="CWB1") == [elsewhere.id]
    assert listed(reference=registration.reference.lower()) == [approved.id, viewed.id]
    assert listed(actor="super", store="MK01") == [approved.id]


def test_a_failed_sign_in_under_an_unknown_name_is_found_by_that_name(compliance_client):
    failed = audit_record(actor=None, actor_username="nobody-here", action="login_failed")
    page = compliance_client.get(LIST, {"actor": "nobody-here"}).content.decode()
    assert events_on(page) == [failed.id]


def test_pages_go_to_older_and_newer_events_by_event_number(compliance_client, staff):
    seqs = [audit_record(actor=staff, action="viewed").id for _ in range(120)]
    newest = seqs[::-1]
    page = compliance_client.get(LIST, {"action": "viewed"}).content.decode()
    assert events_on(page) == newest[:50]
    older = re.search(r'href="\?([^"]*before=\d+)"', page).group(1).replace("&amp;", "&")
    assert "action=viewed" in older
    assert 'rel="prev"' not in page
    page = compliance_client.get(f"{LIST}?{older}").content.decode()
    assert events_on(page) == newest[50:100]
    older = re.search(r'href="\?([^"]*before=\d+)"', page).group(1).replace("&amp;", "&")
    last_page = compliance_client.get(f"{LIST}?{older}").content.decode()
    assert events_on(last_page) == newest[100:]
    assert 'rel="next"' not in last_page
    newer = re.search(r'href="\?([^"]*after=\d+)"', last_page).group(1).replace("&amp;", "&")
    assert events_on(compliance_client.get(f"{LIST}?{newer}").content.decode()) == newest[50:100]


def test_a_page_costs_the_same_number_of_queries_however_long_the_log(compliance_client, staff):
    def queries_for_a_page() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert compliance_client.get(LIST, {"action": "viewed"}).status_code == 200
        return len(queries)

    for _ in range(5):
        audit_record(actor=staff, action="viewed")
    few = queries_for_a_page()
    for _ in range(150):
        audit_record(actor=staff, action="viewed")
    assert queries_for_a_page() == few
    first_page = compliance_client.get(LIST, {"action": "viewed"}).content.decode()
    older = re.search(r'href="\?([^"]*before=\d+)"', first_page).group(1).replace("&amp;", "&")
    with CaptureQueriesContext(connection) as queries:
        compliance_client.get(f"{LIST}?{older}")
    assert len(queries) <= few + 1  # one more: whether newer events exist


def test_no_identity_value_is_shown_and_nothing_offers_to_reveal_one(
    compliance_client, store, staff, supervisor
):
    registration = make_registration(store=store, created_by=staff)
    audit_record(
        actor=staff, action="draft_saved", registration=registration, fields=list(CUSTOMER)
    )
    audit_record(
        actor=supervisor,
        action="revealed",
        registration=registration,
        reason="Customer disputes the record",
        fields=["document_number"],
        origin=Origin(ip="203.0.113.9", user_agent="Firefox"),
    )
    page = compliance_client.get(LIST).content.decode()
    assert registration.reference in page and "Document number" in page
    assert "203.0.113.9" in page and "Customer disputes the record" in page
    for value in [*CUSTOMER.values(), "A123456", "陳大文", "1990-05-17", "Nathan"]:
        assert value not in page
    links = re.findall(r'(?:href|action)="([^"]*)"', page)
    assert not [link for link in links if registration.reference in link]
    assert not [link for link in links if "/review/" in link or "/counter/" in link]


def test_a_compliance_admin_cannot_open_a_record_or_reveal_anything(client, url_world):
    """Every page of a record, with a real record, copy and change behind it: refused with 403
    by the role check, read or posted to (an old address is followed), and nothing is read."""
    compliance = url_world.users["compliance"]
    assert not roles.allows(compliance, roles.REVEAL)
    client.force_login(compliance)
    record_pages = [
        (key, pattern) for key, pattern in app_url_patterns() if "<reference:reference>" in pattern
    ]
    assert len(record_pages) >= 15
    before = AuditEvent.objects.count()
    let_through = []
    for key, pattern in record_pages:
        path = url_world.path(key, pattern)
        for method in (client.get, client.post):
            response = method(path, {"reason": "review_submission"}, follow=True)
            if response.status_code == 405:
                continue  # a page that takes POST only, or GET only: the other one is asked
            if response.status_code != 403:
                let_through.append(f"{method.__name__.upper()} {key} -> {response.status_code}")
    assert let_through == []
    read = AuditEvent.objects.filter(id__gt=before, actor=compliance)
    assert not read.exclude(action=AuditEvent.Action.LOGIN).exists()


def test_browsing_the_log_is_itself_an_audit_event_with_its_filters(compliance_client, compliance):
    compliance_client.get(LIST, {"action": "approved", "store": "", "actor": "counter"})
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == AuditEvent.Action.LISTED
    assert event.actor == compliance
    assert event.details == {
        "view": "audit",
        "filters": {"action": "approved", "actor": "counter"},
    }


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"since": "2025-03-02T10:00", "until": "2025-03-01T10:00"}, "until", "must be later"),
        ({"since": "yesterday"}, "since", "Enter a valid date/time"),
        ({"action": "shredded"}, "action", "Select a valid choice"),
        ({"store": "NOPE"}, "store", "Select a valid choice"),
        # Times that would overflow when converted to UTC.
        ({"since": "0001-01-01T00:00"}, "since", YEARS),
        ({"until": "0001-01-01T00:00"}, "until", YEARS),
        ({"until": "9999-12-31T23:59"}, "until", YEARS),
        ({"since": "1999-12-31T23:59", "until": "3000-01-01T00:00"}, "since", YEARS),
        ({"since": "1999-12-31T23:59", "until": "3000-01-01T00:00"}, "until", YEARS),
    ],
)
def test_bad_filters_get_a_message_next_to_the_field(compliance_client, query, field, message):
    before = AuditEvent.objects.count()
    response = compliance_client.get(LIST, query)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    assert f'id="error_1_id_{field}"' in page
    assert "Correct the filters to see the events." in page
    assert 'id="audit-events"' not in page
    assert AuditEvent.objects.count() == before  # nothing was listed


def test_the_first_and_last_years_allowed_are_accepted(compliance_client, staff):
    event = audit_record(actor=staff, action="login")
    response = compliance_client.get(
        LIST, {"since": "2000-01-01T00:00", "until": "2999-12-31T23:59"}
    )
    assert response.status_code == 200
    assert event.id in events_on(response.content.decode())


@pytest.mark.parametrize(
    "query",
    [{"since": "0001-01-01T00:00"}, {"until": "0001-01-01"}, {"since": "9999-12-31T23:59"}],
)
def test_an_export_with_an_impossible_time_goes_back_to_the_field_error(compliance_client, query):
    before = AuditEvent.objects.count()
    response = compliance_client.post(reverse("audit-export"), {"format": "csv", **query})
    assert response.status_code == 302
    response = compliance_client.get(response["Location"])
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose a valid export format and filters." in page
    assert YEARS in page
    [field] = query
    assert f'id="error_1_id_{field}"' in page
    assert AuditEvent.objects.count() == before  # neither exported nor listed
    assert not AuditJob.objects.exists()


def test_a_cursor_that_is_not_a_number_is_ignored(compliance_client, staff):
    event = audit_record(actor=staff, action="login")
    response = compliance_client.get(LIST, {"before": "x'; DROP", "after": "-1"})
    assert response.status_code == 200
    assert event.id in events_on(response.content.decode())


@pytest.mark.parametrize(
    "cursor",
    [
        {"before": "²"},  # a digit to str.isdigit, not to int()
        {"after": "١٢"},  # Arabic-Indic digits: decimal, not ASCII
        {"before": "9" * 30},  # beyond any event number a database holds
        {"after": "9" * 5000},  # beyond what int() converts
        {"before": "0"},
    ],
)
def test_a_cursor_out_of_range_is_ignored_not_an_error_page(compliance_client, staff, cursor):
    event = audit_record(actor=staff, action="login")
    response = compliance_client.get(LIST, cursor)
    assert response.status_code == 200
    assert event.id in events_on(response.content.decode())


def test_the_filter_form_and_the_export_form_carry_no_stale_csrf_token(compliance_client, staff):
    audit_record(actor=staff, action="viewed")
    # As bookmarked from a form that once sent its token along.
    page = compliance_client.get(
        LIST, {"action": "viewed", "csrfmiddlewaretoken": "stale-token", "actor": ""}
    ).content.decode()
    filters = page.split('id="audit-filters"', 1)[1].split("</form>", 1)[0]
    assert "csrfmiddlewaretoken" not in filters
    # The export form posts the filters on screen, and its own token only.
    export = page.split('id="audit-export"', 1)[1].split("</form>", 1)[0]
    assert export.count('name="csrfmiddlewaretoken"') == 1 and "stale-token" not in export
    hidden = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', export)
    assert [field for field in hidden if field[0] != "csrfmiddlewaretoken"] == [
        ("action", "viewed")
    ]
    assert re.findall(r'name="format" value="(\w+)"', export) == ["csv", "jsonl"]
    verify = page.split('id="audit-verify"', 1)[1].split("</form>", 1)[0]
    assert verify.count('name="csrfmiddlewaretoken"') == 1


def row_of(page: str, seq: int) -> str:
    body = page.split('id="audit-events"', 1)[1]
    return re.search(rf"<tr>\s*<td>{seq}</td>(.*?)</tr>", body, re.S).group(1)


@pytest.mark.parametrize(
    ("action", "reason", "label"),
    [
        ("returned", "materials_incomplete", "Materials incomplete"),
        ("revealed", "compare_with_copy", "Compare with the document copy"),
        ("revealed", "suspected_fraud", "Investigate suspected fraud"),
        ("rejected", "suspected_fraud", "Suspected fraud"),
        ("document_viewed", "check_against_original", "Check the copy against the original"),
        ("login_failed", "locked", "User name locked"),
        ("revealed", "Asked by the police", "Asked by the police"),
    ],
)
def test_reasons_are_shown_by_their_labels(compliance_client, staff, action, reason, label):
    event = audit_record(actor=staff, action=action, reason=reason)
    row = row_of(compliance_client.get(LIST).content.decode(), event.id)
    assert label in row
    if label != reason:
        assert f'title="{reason}"' in row  # the code, for whoever compares with an export
        assert f">{reason}<" not in row


@pytest.mark.usefixtures("exports_folder")
def test_fields_are_shown_by_their_labels_and_exports_keep_the_names(compliance_client, staff):
    changed = audit_record(
        actor=staff, action="change_approved", fields=["address", "contact_number", "status"]
    )
    shown = audit_record(actor=staff, action="document_viewed", fields=["identity"])
    made_up = audit_record(actor=staff, action="user_changed", fields=["groups", "some_thing"])
    page = compliance_client.get(LIST).content.decode()
    row = row_of(page, changed.id)
    assert "Address" in row and "Contact number" in row and "Status" in row
    assert ">address<" not in row and "address, contact_number" not in row
    assert 'title="contact_number"' in row
    assert "Identity document" in row_of(page, shown.id)
    row = row_of(page, made_up.id)
    assert "Roles" in row and "Some thing" in row
    export = export_from_page(compliance_client, {"format": "csv"})
    body = b"".join(export.streaming_content).decode()
    assert "contact_number" in body and "Contact number" not in body


def test_the_time_column_and_the_range_are_labelled_for_people(compliance_client, staff):
    audit_record(actor=staff, action="login")
    page = compliance_client.get(LIST).content.decode()
    assert "Time (Hong Kong)" in page and "Asia/Hong_Kong" not in page
    assert "From (inclusive)" in page
    assert "Events at or after this time." in page
