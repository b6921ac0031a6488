"""The counter's lists in a browser: the list page and the home page, in English and Chinese."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from registrations import roles
from tests.browser import ARTIFACTS, sign_in
from tests.factories import (
    make_decided,
    make_person,
    make_registration,
    make_returned,
    make_store,
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAMES = [
    ("CHAN Tai Man", "陳𠮷"),
    ("LEE Siu Ming", "李小明"),
    ("WONG Ka Yan", "黃嘉欣"),
    ("CHEUNG Wing Hong", "張永康"),
]


def _records():
    store = make_store(code="MK01", name="Mong Kok", name_zh="旺角")
    staff = make_user(roles.COUNTER_STAFF, stores=[store], username="counter.mk")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super.mk")
    now = timezone.now()
    for i in range(14):
        name_en, name_zh = NAMES[i % len(NAMES)]
        make_registration(
            store=store,
            created_by=staff,
            status="draft",
            furthest_step=1 + i % 3,
            customer=make_person(name_en=name_en, name_zh=name_zh),
        )
    for i in range(3):
        make_returned(
            store=store,
            created_by=staff,
            reviewer=supervisor,
            reason_code=("document_unreadable", "materials_incomplete", "other")[i],
        )
    for i in range(4):
        make_decided(
            "approved",
            store=store,
            created_by=staff,
            reviewer=supervisor,
            decided_at=now - datetime.timedelta(minutes=i),
        )
    return staff


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_list_and_home_pages_in_a_browser(live_server, page, language):
    _records()
    ARTIFACTS.mkdir(exist_ok=True)
    page.context.add_cookies(
        [{"name": "django_language", "value": language, "url": live_server.url}]
    )
    sign_in(page, live_server, "counter.mk")
    page.screenshot(path=str(ARTIFACTS / f"counter-lists-home-{language}.png"), full_page=True)
    home = page.content()
    assert "CHAN Tai Man" not in home and "陳𠮷" not in home
    assert "陳•" in home
    page.click("#home-drafts .see-all a")
    page.wait_for_selector("#record-rows")
    assert page.locator("#record-rows tbody tr").count() == 14
    page.screenshot(path=str(ARTIFACTS / f"counter-lists-drafts-{language}.png"), full_page=True)
    page.click('#record-lists a[data-list="returned"]')
    page.wait_for_selector("#record-rows")
    assert page.locator("#record-rows tbody tr").count() == 3
    page.fill("#id_reference", "not a reference")
    page.click("#button-record-search")
    page.wait_for_selector(".invalid-feedback")
    page.screenshot(
        path=str(ARTIFACTS / f"counter-lists-search-error-{language}.png"), full_page=True
    )
