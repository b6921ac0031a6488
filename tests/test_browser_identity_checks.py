"""The issue's "done when", in a real Chromium, in English and Chinese: a mismatched name on a
known HKID is stopped at the identity step (the warning appears as the name is typed, without a
page reload) and, once confirmed and submitted, flagged to the supervisor, who must confirm
before approving; the per-person limit shows before Submit.

Screenshots go to test-artifacts/ for a person to look at.
"""

import re

import pytest
from django.utils import translation
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations.models import AuditEvent, Registration
from tests.browser import ARTIFACTS, PNG, sign_in
from tests.factories import make_approved, make_store, make_user, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The factories' customer holds this HKID as CHAN Tai Man, 陳大文𠮷, born 1990-05-17.
KNOWN_HKID = "A123456(3)"
LIMIT = 10


def choose_language(page, live_server, language: str) -> None:
    page.goto(f"{live_server.url}/login/")
    if language != "en":
        with page.expect_navigation():
            page.select_option("#language-select", language)
    assert page.locator("html").get_attribute("lang") == language


def type_into(page, selector: str, text: str) -> None:
    """Keyboard only: focus the field and type, as a person at the counter would."""
    page.focus(selector)
    page.keyboard.type(text)


@pytest.mark.parametrize("language", ["en", "zh-hant"])
def test_a_mismatched_name_on_a_known_hkid_is_stopped_then_flagged_to_the_supervisor(
    page, live_server, tmp_path, settings, language
):
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    ARTIFACTS.mkdir(exist_ok=True)
    store = make_store(code="MK01", name="Mong Kok", name_zh="旺角")
    counter = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    earlier_reviewer = make_user(roles.SUPERVISOR, supervises=[store], username="earlier")
    supervisor = make_user(roles.SUPERVISOR, supervises=[store], username="super")
    device = TOTPDevice.objects.create(user=supervisor, name="authenticator", confirmed=True)
    # The customer already holds the limit less one prepaid SIM.
    known = [
        make_approved(store=store, created_by=counter, reviewer=earlier_reviewer)
        for _ in range(LIMIT - 1)
    ]

    choose_language(page, live_server, language)
    sign_in(page, live_server, "counter")
    page.click("#button-new-registration")
    page.wait_for_url(re.compile(r"/materials/$"))
    reference = page.inner_text("#reference")
    page.select_option("#id_document_type", "hkid")
    page.check("#id_original_sighted")
    page.set_input_files(
        "#id_identity_copy", files=[{"name": "hkid.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.check("input[name=sim_kind][value=physical]")
    page.fill("#id_iccid", "8985200123456789017")
    page.fill("#id_msisdn", "6123 4567")
    page.check("input[name=plan][value=prepaid]")
    page.click("#button-next")
    page.wait_for_url(re.compile(r"/channel/$"))
    page.click("#button-next")
    page.wait_for_url(re.compile(r"/identity/$"))

    # A mark on this very page: it would be gone if the page were loaded again.
    page.evaluate("window.stillThisPage = true")
    refused = []
    page.on("console", lambda message: refused.append(message.text))

    # The number typed: what the customer holds shows at once, before anything else.
    type_into(page, "#id_document_number", KNOWN_HKID)
    prepaid = page.locator("#identity-check-counts li[data-plan=prepaid]")
    prepaid.wait_for()
    with translation.override(language):
        assert str(Registration.Plan.PREPAID.label) in prepaid.inner_text()
    assert f"{LIMIT - 1}" in prepaid.inner_text() and f"{LIMIT}" in prepaid.inner_text()
    assert page.locator("#identity-check-over-limit").count() == 0
    page.screenshot(path=ARTIFACTS / f"identity-limit-{language}.png", full_page=True)

    # A name that differs from the one on file for this HKID: warned while typing.
    type_into(page, "#id_name_en", "WONG Siu Ming")
    page.locator("#identity-check-discrepancy").wait_for()
    page.locator("#id_name_en_check").wait_for()
    assert page.is_visible("#discrepancy-confirm")
    assert page.evaluate("window.stillThisPage") is True
    assert "id_name_en_check" in page.get_attribute("#id_name_en", "aria-describedby").split()

    type_into(page, "#id_name_zh", "陳大文𠮷")
    page.fill("#id_date_of_birth", "1990-05-17")
    page.select_option("#id_nationality", "HK")
    type_into(page, "#id_address", "Flat 3, 1 Hennessy Road, Wan Chai")
    type_into(page, "#id_contact_number", "6123 4567")
    page.focus("#id_declaration_accepted")
    page.keyboard.press("Space")
    page.screenshot(path=ARTIFACTS / f"identity-mismatch-warning-{language}.png", full_page=True)

    # Submit without the confirmation: stopped, the message beside the name, nothing lost.
    page.click("#button-submit")
    page.wait_for_load_state()
    assert page.is_visible("#id_name_en_error")
    assert page.is_visible("#id_discrepancy_confirmed_error")
    assert page.input_value("#id_name_en") == "WONG Siu Ming"
    assert page.input_value("#id_name_zh") == "陳大文𠮷"
    assert Registration.objects.get(reference=reference).status == "draft"
    page.screenshot(path=ARTIFACTS / f"identity-mismatch-stopped-{language}.png", full_page=True)

    # The customer confirms the details: ticked with the keyboard, then submitted.
    page.focus("#id_discrepancy_confirmed")
    page.keyboard.press("Space")
    if not page.is_checked("#id_declaration_accepted"):
        page.check("#id_declaration_accepted")
    page.click("#button-submit")
    page.wait_for_url(re.compile(rf"/counter/{reference}/$"))
    registration = Registration.objects.get(reference=reference)
    assert registration.status == "pending"
    assert registration.discrepancy_fields == ["name_en"]
    assert registration.discrepancy_references == sorted(r.reference for r in known)
    assert not [text for text in refused if "Content Security Policy" in text]
    assert AuditEvent.objects.filter(
        action="searched", registration_reference=reference, details__purpose="early_check"
    ).exists()

    # The supervisor: the queue marks the record, the record names what differs.
    page.click("nav form button[type=submit]")  # sign out
    page.wait_for_url(re.compile(r"/login/"))
    page.fill("#id_username", "super")
    page.fill("#id_password", "correct horse battery staple")
    page.click("form button[type=submit]")
    page.wait_for_url(re.compile(r"/account/second-factor/"))
    page.fill("#id_otp_token", totp_code(device))
    page.click("#button-verify")
    page.goto(f"{live_server.url}/review/")
    row = page.locator("#queue tr", has=page.locator(f"text={reference}"))
    assert row.locator(".discrepancy-badge").is_visible()
    page.screenshot(path=ARTIFACTS / f"review-queue-flagged-{language}.png", full_page=True)

    page.click(f"#queue a:has-text('{reference}')")
    page.wait_for_url(re.compile(rf"/review/{reference}/$"))
    assert page.is_visible("#discrepancy")
    assert page.locator(f"#discrepancy a:has-text('{known[0].reference}')").is_visible()
    page.check(f"input[name=outcome][value={Registration.Status.APPROVED}]")
    page.click("#decision-form button[type=submit]")
    page.wait_for_load_state()
    assert page.is_visible("#id_discrepancy_checked_error")
    assert Registration.objects.get(reference=reference).status == "pending"
    page.screenshot(path=ARTIFACTS / f"review-discrepancy-{language}.png", full_page=True)

    page.check(f"input[name=outcome][value={Registration.Status.APPROVED}]")
    page.check("#id_discrepancy_checked")
    page.click("#decision-form button[type=submit]")
    page.wait_for_url(re.compile(r"/review/$"))
    assert Registration.objects.get(reference=reference).status == "approved"
    approved = AuditEvent.objects.get(action="approved", registration_reference=reference)
    assert approved.details["discrepancy_checked"] is True


def test_the_limit_reached_shows_before_submit(page, live_server, tmp_path, settings):
    """At the limit already: the warning that this registration would go over shows as soon as
    the number is typed, long before Submit."""
    settings.PRIVATE_STORAGE_ROOT = tmp_path
    ARTIFACTS.mkdir(exist_ok=True)
    store = make_store(code="MK01", name="Mong Kok")
    counter = make_user(roles.COUNTER_STAFF, stores=[store], username="counter")
    reviewer = make_user(roles.SUPERVISOR, supervises=[store])
    for _ in range(LIMIT):
        make_approved(store=store, created_by=counter, reviewer=reviewer)
    sign_in(page, live_server, "counter")
    page.click("#button-new-registration")
    page.wait_for_url(re.compile(r"/materials/$"))
    page.select_option("#id_document_type", "hkid")
    page.check("#id_original_sighted")
    page.set_input_files(
        "#id_identity_copy", files=[{"name": "hkid.png", "mimeType": "image/png", "buffer": PNG}]
    )
    page.fill("#id_iccid", "8985200123456789017")
    page.fill("#id_msisdn", "6123 4567")
    page.check("input[name=plan][value=prepaid]")
    page.click("#button-next")
    page.wait_for_url(re.compile(r"/channel/$"))
    page.click("#button-next")
    page.wait_for_url(re.compile(r"/identity/$"))
    type_into(page, "#id_document_number", KNOWN_HKID)
    page.locator("#identity-check-over-limit").wait_for()
    assert f"{LIMIT} of {LIMIT}" in page.inner_text("#identity-check-counts")
    page.screenshot(path=ARTIFACTS / "identity-over-limit-en.png", full_page=True)
