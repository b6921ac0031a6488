"""A real Chromium (Debian's) walks the counter through the four steps, in English and Chinese.

Screenshots and the printed receipt (PDF) are written to test-artifacts/ for a person to look at.
"""

import re
import time

import pytest
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations.models import AuditEvent, Registration
from tests.browser import ARTIFACTS, PNG, sign_in
from tests.factories import make_store, make_user, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


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


# The second factor and the idle sign-out, in a real browser ----------------------------------


@pytest.mark.second_factor
def test_a_supervisor_signs_in_with_a_code_from_the_authenticator_app(page, live_server):
    store = make_store(code="MK01", name="Mong Kok")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    device = TOTPDevice.objects.create(user=supervisor, name="authenticator", confirmed=True)
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "super")
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/second-factor/"))
    # Nothing opens before the code, the review queue included.
    page.goto(f"{live_server.url}/review/")
    assert "/account/second-factor/" in page.url
    page.fill("#id_otp_token", totp_code(device))
    page.click("#button-verify")
    page.wait_for_url(f"{live_server.url}/review/")
    assert page.locator("h1").inner_text() == "Review queue"


@pytest.mark.second_factor
def test_a_supervisor_enrols_by_scanning_the_qr_code(page, live_server):
    store = make_store(code="MK01", name="Mong Kok")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    refused = []
    page.on("console", lambda message: refused.append(message.text))
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "super")
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/second-factor/enrol/"))
    qr = page.locator("#qr-code svg")
    assert qr.is_visible() and qr.bounding_box()["width"] >= 150
    assert not [text for text in refused if "Content Security Policy" in text]
    device = TOTPDevice.objects.get(user=supervisor, confirmed=False)
    page.fill("#id_otp_token", totp_code(device))
    page.click("#button-enrol")
    page.wait_for_selector("#recovery-codes")
    assert len(page.locator("#recovery-codes li").all_inner_texts()) == 10
    page.click("#button-codes-done")
    page.wait_for_url(f"{live_server.url}/")
    assert page.locator("#pending-count").is_visible()


def _session_of(context):
    from django.conf import settings
    from django.contrib.sessions.backends.db import SessionStore

    cookie = next(c for c in context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    return SessionStore(session_key=cookie["value"])


def _last_active(context, seconds_ago: int) -> None:
    from registrations.middleware import LAST_ACTIVITY_KEY

    session = _session_of(context)
    session[LAST_ACTIVITY_KEY] = int(time.time()) - seconds_ago
    session.save()


def test_the_idle_warning_offers_to_stay_signed_in_across_tabs(browser, live_server, settings):
    settings.SESSION_IDLE_MINUTES = 1  # the warning comes 30 seconds before the end
    store = make_store(code="MK01", name="Mong Kok")
    make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    try:
        first = context.new_page()
        sign_in(first, live_server, "counter")
        second = context.new_page()
        # Idle for less than the 30 seconds after which a page load renews the session.
        _last_active(context, 27)
        second.goto(f"{live_server.url}/counter/find/")
        first.reload()
        for tab in (first, second):
            tab.wait_for_selector("#idle-warning:not(.d-none)", timeout=10_000)
        assert "Stay signed in" in first.inner_text("#idle-warning")

        # One tab stays signed in: the warning leaves the other too.
        first.click("#button-stay-signed-in")
        for tab in (first, second):
            tab.wait_for_selector("#idle-warning.d-none", state="attached", timeout=10_000)
        assert (
            second.evaluate(
                "fetch('/account/session/').then(r => r.json()).then(d => d.seconds_left)"
            )
            >= 55
        )

        # Left alone past the limit: the warning's next look at the session finds it ended
        # and leads to the sign-in page, which says why.
        _last_active(context, 27)
        second.reload()
        second.wait_for_selector("#idle-warning:not(.d-none)", timeout=10_000)
        _last_active(context, 61)
        second.wait_for_url(re.compile(r"/login/\?next=%2Fcounter%2Ffind%2F"), timeout=15_000)
        assert "signed out after 1 minute without activity" in second.inner_text("main")
    finally:
        context.close()
