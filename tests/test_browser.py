"""A real Chromium (Debian's) walks the counter through the four steps, in English and Chinese.

Screenshots and the printed receipt (PDF) are written to test-artifacts/ for a person to look at.
"""

import os
import re
from pathlib import Path

import pytest
from django.utils import translation

from registrations import roles
from registrations.models import AuditEvent, Registration
from tests.factories import make_store, make_user

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f"
    b"\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00"
    b"\x00\x00\x00IEND\xaeB`\x82"
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is needed for the browser tests: `make test` installs it.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    yield context.new_page()
    context.close()


def sign_in(page, live_server, username):
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.parametrize(
    ("language", "check_digit_message"),
    [("en", "check digit"), ("zh-hant", "核對")],
)
def test_counter_walks_through_the_four_steps_and_prints_the_receipt(
    page, live_server, tmp_path, settings, language, check_digit_message
):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    ARTIFACTS.mkdir(exist_ok=True)
    store = make_store(code="MK01", name="Mong Kok", name_zh="旺角")
    make_user(roles.COUNTER_STAFF, stores=[store], username="counter")

    page.goto(f"{live_server.url}/login/")
    if language != "en":
        with page.expect_navigation():
            page.select_option("#language-select", language)
    assert page.locator("html").get_attribute("lang") == language
    sign_in(page, live_server, "counter")

    page.click("#button-new-registration")
    page.wait_for_url(re.compile(r"/materials/$"))
    reference = page.inner_text("#reference")

    # Step 1: materials.
    page.select_option("#id_document_type", "hkid")
    page.check("#id_original_sighted")
    page.set_input_files(
        "#id_identity_copy", files=[{"name": "hkid.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.check("input[name=sim_kind][value=physical]")
    page.fill("#id_iccid", "8985200123456789017")
    page.fill("#id_msisdn", "9123 4567")
    page.check("input[name=plan][value=prepaid]")
    page.screenshot(path=ARTIFACTS / f"step1-materials-{language}.png", full_page=True)
    page.click("#button-next")
    page.wait_for_url(re.compile(r"/channel/$"))

    # Step 2: channel (the counter is the default).
    assert page.is_checked("input[name=channel][value=counter]")
    page.screenshot(path=ARTIFACTS / f"step2-channel-{language}.png", full_page=True)
    page.click("#button-next")
    page.wait_for_url(re.compile(r"/identity/$"))

    # Step 3: identity, first with a wrong check digit.
    page.fill("#id_name_en", "CHAN Tai Man")
    page.fill("#id_name_zh", "陳大文𠮷")
    page.fill("#id_document_number", "A123456(4)")
    page.fill("#id_date_of_birth", "1990-05-17")
    page.select_option("#id_nationality", "HK")
    page.fill("#id_address", "Flat 12A, 88 Nathan Road, Mong Kok")
    page.fill("#id_contact_number", "9123 4567")
    page.fill("#id_email", "tai.man@example.com")
    page.check("#id_declaration_accepted")
    page.click("#button-submit")
    page.wait_for_load_state()
    error = page.locator("#id_document_number_error")
    assert check_digit_message in error.inner_text()
    assert page.input_value("#id_name_zh") == "陳大文𠮷"  # nothing entered is lost
    assert page.input_value("#id_address") == "Flat 12A, 88 Nathan Road, Mong Kok"
    page.screenshot(path=ARTIFACTS / f"step3-error-{language}.png", full_page=True)

    page.fill("#id_document_number", "a123456(3)")
    if not page.is_checked("#id_declaration_accepted"):
        page.check("#id_declaration_accepted")
    page.click("#button-submit")
    page.wait_for_url(re.compile(rf"/counter/{reference}/$"))

    # Step 4: status page, then the receipt.
    registration = Registration.objects.get(reference=reference)
    assert registration.status == "pending"
    with translation.override(language):
        assert page.inner_text("#status").strip() == str(registration.get_status_display())
    page.screenshot(path=ARTIFACTS / f"step4-status-{language}.png", full_page=True)
    page.goto(f"{live_server.url}/counter/{reference}/receipt/")
    receipt = page.inner_text("main")
    assert reference in receipt
    assert "A123***(*)" in receipt
    assert "A123456(3)" not in receipt and "1234563" not in receipt
    page.emulate_media(media="print")
    page.pdf(path=str(ARTIFACTS / f"receipt-{language}.pdf"))
    page.screenshot(path=ARTIFACTS / f"receipt-{language}.png", full_page=True)
    assert not page.is_visible("nav.navbar")  # print CSS hides the navigation

    assert AuditEvent.objects.filter(action="submitted", registration_reference=reference).exists()
    assert AuditEvent.objects.filter(
        action="receipt_viewed", registration_reference=reference
    ).exists()
