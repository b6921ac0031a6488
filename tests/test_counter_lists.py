"""The counter's lists: drafts, returned, pending and decided records of the store, page by page,
found by reference, each row with a masked name and mobile number; and the home page's share."""

from __future__ import annotations

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from registrations import roles, selectors
from registrations.masking import mask_name
from registrations.models import AuditEvent, Registration
from tests.factories import (
    make_decided,
    make_pending_change,
    make_person,
    make_registration,
    make_returned,
    make_user,
)

pytestmark = pytest.mark.django_db

RECORDS = "/counter/records/"
ROW_REFERENCE = re.compile(
    r'<tr><td class="font-monospace text-nowrap"><a href="[^"]+">([A-Z0-9-]{11})</a>'
)


def listed(html: str) -> list[str]:
    """The references of the rows of the page's records table, in order."""
    return ROW_REFERENCE.findall(html)


def link(html: str, element_id: str) -> str | None:
    match = re.search(rf'href="([^"]+)"[^>]*id="{element_id}"', html)
    return match.group(1).replace("&amp;", "&") if match else None


def walk(client, start: str) -> tuple[list[str], list[str], int]:
    """Every page from `start` following "Older", then back following "Newer": the references
    seen going, those seen coming back, and how many pages there were."""
    going, pages, path = [], 0, start
    while path:
        html = client.get(RECORDS + path if path.startswith("?") else path).content.decode()
        going += listed(html)
        pages += 1
        assert pages <= 20, "the pages never end"
        last_html, path = html, link(html, "page-older")
    back, path = list(reversed(listed(last_html))), link(last_html, "page-newer")
    while path:
        html = client.get(RECORDS + path).content.decode()
        back += list(reversed(listed(html)))
        path = link(html, "page-newer")
        assert len(back) <= 20 * 25, "the pages never end"
    return going, list(reversed(back)), pages


@pytest.fixture
def small_pages(monkeypatch):
    from registrations.views import counter

    monkeypatch.setattr(counter, "COUNTER_LIST_PAGE_SIZE", 5)


def drafts(store, staff, n: int) -> list[Registration]:
    return [make_registration(store=store, created_by=staff, status="draft") for _ in range(n)]


def pending(store, staff, n: int, *, at: datetime.datetime | None = None) -> list[Registration]:
    """n submissions, a minute apart, the newest last; every third one shares its time with the
    one before, so the id has to break the tie."""
    at = at or timezone.now()
    made = []
    for i in range(n):
        minutes = n - i - (1 if i % 3 == 2 else 0)
        made.append(
            make_registration(
                store=store,
                created_by=staff,
                status="pending",
                submitted_at=at - datetime.timedelta(minutes=minutes),
            )
        )
    return made


def newest_first(registrations: list[Registration], column: str | None) -> list[str]:
    key = (lambda r: r.pk) if column is None else (lambda r: (getattr(r, column), r.pk))
    return [r.reference for r in sorted(registrations, key=key, reverse=True)]


# Paging ----------------------------------------------------------------------------------------


def test_paging_reaches_all_14_drafts_newest_first_with_none_twice_or_missing(
    staff_client, store, staff, small_pages
):
    made = drafts(store, staff, 14)
    going, back, pages = walk(staff_client, "?list=drafts")
    assert pages == 3
    assert going == newest_first(made, None)
    assert back == going  # "Newer" walks the same rows back
    page = staff_client.get(RECORDS + "?list=drafts").content.decode()
    assert "Page 1 of 3" in page and ">Drafts <span" in page and ">14</span>" in page


def test_paging_reaches_all_60_pending_ordered_by_submission_ties_broken_by_id(
    staff_client, store, staff
):
    made = pending(store, staff, 60)
    going, back, pages = walk(staff_client, "?list=pending")
    assert pages == 3  # 25 a page
    assert going == newest_first(made, "submitted_at")
    assert len(set(going)) == 60 and back == going


def test_a_page_in_the_middle_survives_a_new_record_arriving(
    staff_client, store, staff, small_pages
):
    made = drafts(store, staff, 12)
    first = staff_client.get(RECORDS + "?list=drafts").content.decode()
    drafts(store, staff, 3)  # three new drafts go on top, not onto the next page
    second = staff_client.get(RECORDS + link(first, "page-older")).content.decode()
    assert listed(second) == newest_first(made, None)[5:10]


def test_a_tampered_cursor_or_page_shows_the_first_page_not_an_error(staff_client, store, staff):
    made = drafts(store, staff, 3)
    for query in (
        "?list=drafts&older=x",
        "?list=pending&newer=12-ab",
        "?list=nope&page=-1",
        "?list=decided&older=99999999999999999999-1",
        "?page=9999999999999",
    ):
        response = staff_client.get(RECORDS + query)
        assert response.status_code == 200
    assert listed(staff_client.get(RECORDS + "?list=drafts&older=x").content.decode()) == (
        newest_first(made, None)
    )


def test_each_list_holds_its_statuses_and_shows_step_reason_store_and_who(
    staff_client, store, staff, supervisor
):
    draft = make_registration(store=store, created_by=staff, status="draft", furthest_step=2)
    returned = make_returned(
        store=store, created_by=staff, reviewer=supervisor, reason_code="document_expired"
    )
    waiting = make_registration(store=store, created_by=staff, status="pending")
    now = timezone.now()
    decided = [
        make_decided("approved", store=store, created_by=staff, reviewer=supervisor),
        make_decided(
            "rejected", store=store, created_by=staff, reviewer=supervisor, reason_code="duplicate"
        ),
        make_decided(
            "suspended",
            store=store,
            created_by=staff,
            reviewer=supervisor,
            suspended_at=now,
            sim_loss="lost",
        ),
        make_decided(
            "terminated", store=store, created_by=staff, reviewer=supervisor, terminated_at=now
        ),
    ]
    pages = {
        name: staff_client.get(RECORDS + f"?list={name}").content.decode()
        for name in ("drafts", "returned", "pending", "decided")
    }
    assert listed(pages["drafts"]) == [draft.reference]
    assert listed(pages["returned"]) == [returned.reference]
    assert listed(pages["pending"]) == [waiting.reference]
    assert sorted(listed(pages["decided"])) == sorted(r.reference for r in decided)
    assert "step 2" in pages["drafts"] and "counter" in pages["drafts"]  # who recorded it
    assert "Document expired" in pages["returned"] and "MK01" in pages["returned"]
    for text in ("Approved", "Rejected", "Suspended", "Terminated", "Duplicate registration"):
        assert text in pages["decided"]
    # A draft or a returned record opens where it is resumed; the others at their page.
    assert f"/counter/{draft.reference}/resume/" in pages["drafts"]
    assert f'/counter/{waiting.reference}/"' in pages["pending"]


# Search by reference --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "{ref}",
        "{lower}",
        "{bare}",
        "  {lower_bare}  ",
        "{head} {tail}",
        "{head}\u2013{tail}",  # an en dash
        "{fullwidth}",  # typed with a Chinese input method
    ],
)
def test_search_finds_a_record_by_its_reference_however_it_is_typed(
    staff_client, store, staff, typed
):
    target = make_registration(store=store, created_by=staff, status="pending")
    drafts(store, staff, 2)
    ref = target.reference
    head, tail = ref.split("-")
    text = typed.format(
        ref=ref,
        lower=ref.lower(),
        bare=head + tail,
        lower_bare=(head + tail).lower(),
        head=head,
        tail=tail,
        fullwidth="".join(chr(ord(c) + 0xFEE0) for c in ref),
    )
    response = staff_client.post(RECORDS, {"reference": text})
    assert response.status_code == 200
    assert listed(response.content.decode()) == [ref]


def test_search_says_what_is_wrong_keeps_what_was_typed_and_puts_nothing_in_the_url(
    staff_client, store, staff
):
    make_registration(store=store, created_by=staff, status="draft")
    response = staff_client.post(RECORDS, {"reference": "A123456(3)"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "A reference has ten letters and digits" in page
    assert 'value="A123456(3)"' in page
    assert listed(page) == []
    assert not AuditEvent.objects.filter(action__in=["searched", "listed"]).exists()


def test_search_does_not_find_another_stores_record(staff_client, store, other_store, staff):
    elsewhere = make_registration(
        store=other_store, created_by=make_user(roles.COUNTER_STAFF, stores=[other_store])
    )
    page = staff_client.post(RECORDS, {"reference": elsewhere.reference}).content.decode()
    assert listed(page) == [] and "No record of your stores has this reference." in page
    event = AuditEvent.objects.get(action="searched")
    assert event.details["by"] == "reference" and event.details["references"] == []


# Scope ----------------------------------------------------------------------------------------


def test_another_stores_records_are_never_listed(
    staff_client, store, other_store, staff, supervisor
):
    colleague = make_user(roles.COUNTER_STAFF, stores=[other_store])
    theirs = [
        make_registration(store=other_store, created_by=colleague, status="draft"),
        make_registration(store=other_store, created_by=colleague, status="pending"),
        make_returned(store=other_store, created_by=colleague, reviewer=supervisor),
        make_decided("approved", store=other_store, created_by=colleague, reviewer=supervisor),
    ]
    mine = make_registration(store=store, created_by=staff, status="draft")
    for name in ("drafts", "returned", "pending", "decided"):
        for query in (f"?list={name}", f"?list={name}&store={other_store.code}"):
            page = staff_client.get(RECORDS + query).content.decode()
            assert not any(r.reference in page for r in theirs), query
    assert mine.reference in staff_client.get(RECORDS + "?store=CWB1").content.decode()
    home = staff_client.get("/").content.decode()
    assert not any(r.reference in home for r in theirs)


def test_only_counter_staff_open_the_lists(client, supervisor, compliance):
    for user in (supervisor, compliance):
        client.force_login(user)
        assert client.get(RECORDS).status_code == 403


def test_someone_at_two_stores_chooses_the_store_and_sees_each_ones_count(
    client, store, other_store
):
    both = make_user(roles.COUNTER_STAFF, stores=[store, other_store])
    drafts(store, both, 2)
    there = drafts(other_store, both, 3)
    client.force_login(both)
    page = client.get(RECORDS + "?list=drafts&store=CWB1").content.decode()
    assert listed(page) == newest_first(there, None)
    home = client.get("/").content.decode()
    assert "See all at MK01 (2)" in home and "See all at CWB1 (3)" in home


# Masked names and numbers ---------------------------------------------------------------------


def test_rows_show_names_and_mobile_numbers_masked_never_in_full(staff_client, store, staff):
    people = [
        ("CHAN Tai Man", "陳𠮷", "+85291234567"),
        ("LEE Siu Ming", "𠝹", "+85261239876"),
        ("WONG Ka Yan", "黃嘉欣", "+85251112222"),
    ]
    for name_en, name_zh, msisdn in people:
        make_registration(
            store=store,
            created_by=staff,
            status="pending",
            msisdn=msisdn,
            customer=make_person(name_en=name_en, name_zh=name_zh),
        )
    page = staff_client.get(RECORDS + "?list=pending").content.decode()
    for name_en, name_zh, msisdn in people:
        assert name_en not in page and name_zh not in page
        assert msisdn not in page and msisdn[4:] not in page and msisdn[-8:] not in page
        assert mask_name(name_en) in page and mask_name(name_zh) in page
        assert f"•••• {msisdn[-4:]}" in page
    assert "C••• T•• M••" in page
    assert "陳•" in page and "𠮷" not in page  # the character outside the BMP is hidden whole
    assert "𠝹" not in page  # a name of one character is hidden entirely
    assert "黃•欣" in page
    home = staff_client.get("/").content.decode()
    assert "CHAN Tai Man" not in home and "陳𠮷" not in home


@pytest.mark.parametrize(
    ("name", "masked"),
    [
        ("CHAN Tai Man", "C••• T•• M••"),
        ("陳𠮷", "陳•"),
        ("𠮷陳", "𠮷•"),
        ("陳大文𠮷", "陳••𠮷"),
        ("𠝹", "•"),
        ("葛\U000e0100城", "葛\U000e0100•"),  # a variation selector stays with its character
        ("José", "J•••"),
        ("", ""),
    ],
)
def test_a_mask_keeps_whole_characters_and_never_the_whole_name(name, masked):
    assert mask_name(name) == masked
    if name:
        assert mask_name(name) != name
        # Every character shown is one of the name's, whole: no half of a surrogate pair.
        assert all(ch in name or ch == "•" or ch == " " for ch in mask_name(name))
        mask_name(name).encode("utf-8")


def test_a_page_decrypts_only_the_names_of_the_rows_it_shows(staff_client, store, staff, decrypted):
    drafts(store, staff, 30)
    decrypted.clear()
    staff_client.get(RECORDS + "?list=drafts")
    assert sorted(set(decrypted)) == ["Person.name_en", "Person.name_zh"]
    assert len(decrypted) == 25 * 2


# The audit ------------------------------------------------------------------------------------


def test_a_page_shown_is_one_listed_event_saying_which_list_page_and_rows_without_values(
    staff_client, store, staff, small_pages
):
    made = drafts(store, staff, 7)
    first = staff_client.get(RECORDS + "?list=drafts").content.decode()
    staff_client.get(RECORDS + link(first, "page-older"))
    events = list(AuditEvent.objects.filter(action="listed").order_by("id"))
    assert len(events) == 2
    second = events[1]
    assert second.details["view"] == "counter_records"
    assert second.details["list"] == "drafts" and second.details["page"] == 2
    assert second.details["rows"] == 2
    assert second.details["references"] == newest_first(made, None)[5:]
    assert sorted(second.fields) == ["msisdn", "name_en", "name_zh"]
    assert second.store_code == "MK01" and second.actor == staff
    dump = repr(list(AuditEvent.objects.values()))
    for value in ("CHAN", "陳大文", "𠮷", "+852912", "C•••"):
        assert value not in dump


def test_an_empty_list_writes_no_event(staff_client, store):
    assert staff_client.get(RECORDS + "?list=decided").status_code == 200
    assert not AuditEvent.objects.filter(action="listed").exists()


# The home page --------------------------------------------------------------------------------


def test_home_shows_a_few_drafts_and_a_see_all_link_that_reaches_all_14(
    staff_client, store, staff, supervisor, small_pages
):
    made = drafts(store, staff, 14)
    returned = [make_returned(store=store, created_by=staff, reviewer=supervisor) for _ in range(2)]
    home = staff_client.get("/").content.decode()
    section = home[home.index('id="home-drafts"') : home.index('id="home-returned"')]
    assert listed(section) == newest_first(made, None)[:5]
    see_all = re.search(r'<a href="([^"]+)">See all \(14\)</a>', section).group(1)
    assert see_all.replace("&amp;", "&") == "/counter/records/?list=drafts&store=MK01"
    going, _back, _pages = walk(staff_client, see_all.replace("&amp;", "&"))
    assert sorted(going) == sorted(r.reference for r in made)
    returned_part = home[home.index('id="home-returned"') :]
    assert "See all (2)" in returned_part
    assert sorted(listed(returned_part)[:2]) == sorted(r.reference for r in returned)
    assert "C••• T•• M••" in section and "•••• " in section


def test_home_counts_come_from_the_kept_counts_not_a_count_of_rows(staff_client, store, staff):
    drafts(store, staff, 3)
    with CaptureQueriesContext(connection) as queries:
        staff_client.get("/")
    assert not any("COUNT(" in q["sql"].upper() for q in queries.captured_queries)


def test_decided_since_last_look_is_newest_first_and_the_20_newest_only(
    staff_client, store, staff, supervisor
):
    now = timezone.now()
    decided = [
        make_decided(
            "approved",
            store=store,
            created_by=staff,
            reviewer=supervisor,
            decided_at=now - datetime.timedelta(minutes=i),
        )
        for i in range(24)
    ]
    # A change decided between the third and fourth newest decisions.
    change = make_pending_change(
        decided[-1],
        requested_by=staff,
        status="approved",
        decided_at=now - datetime.timedelta(minutes=2, seconds=30),
        decided_by=supervisor,
    )
    home = staff_client.get("/").content.decode()
    items = home[
        home.index('id="decided-items"') : home.index("</ul>", home.index('id="decided-items"'))
    ]
    shown = re.findall(r'<li><a class="font-monospace" href="[^"]+">([A-Z0-9-]{11})</a>', items)
    expected = [r.reference for r in decided[:3]] + [change.registration.reference]
    expected += [r.reference for r in decided[3:19]]
    assert shown == expected
    assert len(shown) == 20
    assert "at most the 20 newest are shown" in home
    assert 'id="decided-more"' in home and "/counter/records/?list=decided" in home


def test_a_short_decided_list_has_no_more_link(staff_client, store, staff, supervisor):
    make_decided("approved", store=store, created_by=staff, reviewer=supervisor)
    home = staff_client.get("/").content.decode()
    assert 'id="decided-since"' in home and 'id="decided-more"' not in home


def test_the_merged_decisions_selector_is_bounded(store, staff, supervisor):
    for _ in range(4):
        make_decided(
            "returned", store=store, created_by=staff, reviewer=supervisor, reason_code="other"
        )
    result = selectors.counter_decisions_since_last_look(user=staff, limit=3)
    assert len(result["items"]) == 3 and result["more"] is True
    decided_at = [item.decided_at for item in result["items"]]
    assert decided_at == sorted(decided_at, reverse=True)


# Queries per page -----------------------------------------------------------------------------


def test_a_page_runs_a_bounded_number_of_queries_whatever_its_rows(
    staff_client, store, staff, django_assert_max_num_queries
):
    pending(store, staff, 3)
    staff_client.get(RECORDS + "?list=pending")
    with CaptureQueriesContext(connection) as few:
        staff_client.get(RECORDS + "?list=pending")
    pending(store, staff, 60, at=timezone.now() - datetime.timedelta(days=1))
    with django_assert_max_num_queries(len(few)), CaptureQueriesContext(connection) as many:
        page = staff_client.get(RECORDS + "?list=pending").content.decode()
    assert len(listed(page)) == 25
    # A later page also asks whether a newer page exists: one query more, whatever its rows.
    with django_assert_max_num_queries(len(few) + 1):
        staff_client.get(RECORDS + link(page, "page-older"))
    assert len(many) <= 16
    assert not any(
        "COUNT(" in q["sql"].upper() or "OFFSET" in q["sql"].upper() for q in many.captured_queries
    )


# The plan on PostgreSQL -----------------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    ("list_name", "indexes"),
    [
        # Drafts have no submission time: read through (store, status) and sorted by id (a
        # store's drafts are few, stale ones being purged), or by id from the newest, where
        # drafts are (the planner picks by how many there are).
        ("drafts", ("reg_queue_idx", "Index Scan Backward using registrations_registration_pkey")),
        ("returned", ("reg_queue_idx",)),
        ("pending", ("reg_queue_idx",)),
        ("decided", ("reg_decided_idx",)),
    ],
)
def test_postgresql_reads_a_page_through_an_index(
    store, other_store, staff, supervisor, list_name, indexes
):
    """With thousands of registrations in the store (most decided, as in a store that has
    served for years) and more in others, a page, first or later, is read through the index of
    its list, in its order, never by scanning the table."""
    stores = [store, other_store]
    rows = []
    now = timezone.now()
    # Of every 50: a draft (stale ones are purged), 3 returned, 9 pending, 2 terminated, the
    # rest approved; 50 in one store, the next 50 in the other.
    mix = ["draft"] + ["returned"] * 3 + ["pending"] * 9 + ["terminated"] * 2
    mix += ["approved"] * (50 - len(mix))
    for i in range(10000):
        status = mix[i % 50]
        submitted = status != "draft"
        decided = status in ("approved", "returned", "terminated")
        rows.append(
            Registration(
                store=stores[(i // 50) % 2],
                created_by=staff,
                status=status,
                sim_kind="physical",
                iccid=f"8985{i:015d}",
                msisdn=f"+8529{i:07d}",
                plan="prepaid",
                submitted_by=staff if submitted else None,
                submitted_at=now - datetime.timedelta(seconds=2 * i) if submitted else None,
                reviewer=supervisor if decided else None,
                decided_at=now - datetime.timedelta(seconds=i) if decided else None,
                terminated_at=now if status == "terminated" else None,
                reason_code="other" if status == "returned" else "",
            )
        )
    Registration.objects.bulk_create(rows)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE registrations_registration")
    first = selectors.counter_list_queryset(stores=[store], list_name=list_name)[:25]
    plans = [first.explain()]
    page = selectors.counter_list_page(stores=[store], list_name=list_name, size=25)
    later = selectors.counter_list_page(
        stores=[store], list_name=list_name, older_than=page["older"], size=25
    )
    assert later["rows"] and later["rows"][0].pk != page["rows"][0].pk
    column = selectors.COUNTER_LISTS[list_name][1]
    last = page["rows"][-1]
    older = selectors.counter_list_queryset(stores=[store], list_name=list_name).filter(
        selectors._before_in_list(column, getattr(last, column) if column else None, last.pk)
    )[:25]
    plans.append(older.explain())
    for plan in plans:
        assert any(index in plan for index in indexes), plan
        assert "Seq Scan on registrations_registration" not in plan, plan
    if column is not None:
        # A later page seeks in the index to where the previous one ended.
        assert re.search(rf"Index Cond: .*\b{column} <= ", plans[1]), plans[1]
