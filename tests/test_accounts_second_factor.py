"""Supervisors, compliance admins and superusers pass a second factor (an authenticator app)
after the password; no page is served before it, the admin included."""

import base64
import datetime
import re
from urllib.parse import urlencode

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations.models import AuditEvent
from tests.factories import make_store, make_user, totp_code

# The real pages: force_login does not pass the second factor here.
pytestmark = [pytest.mark.django_db, pytest.mark.second_factor]

PASSWORD = "correct horse battery staple"
CODE_PAGE = "/account/second-factor/"
ENROL_PAGE = "/account/second-factor/enrol/"
RECOVERY_PAGE = "/account/second-factor/recovery/"
# Pages of every kind that a supervisor, a compliance admin or a superuser could open.
GUARDED = [
    "/",
    "/review/",
    "/review/dashboard/",
    "/compliance/audit/",
    "/admin/",
    "/account/staff/",
]


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)


def sign_in(client, username: str, path: str = "/login/", password: str = PASSWORD):
    """The sign-in form as a browser sends it (URL-encoded)."""
    response = client.post(
        path,
        urlencode({"username": username, "password": password}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 302, username
    return response


def test_a_supervisor_with_the_right_password_reaches_no_page_before_the_code(client, supervisor):
    device = enrolled(supervisor)
    sign_in(client, "super")
    response = client.get("/review/")
    assert response.status_code == 302
    assert response["Location"] == f"{CODE_PAGE}?next=/review/"
    for path in GUARDED:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(CODE_PAGE), path
    # A POST is refused the same way: nothing is decided before the second factor.
    assert client.post("/review/ABCDE-FGHJK/decide/", {"approve": "1"})["Location"].startswith(
        CODE_PAGE
    )

    page = client.get(f"{CODE_PAGE}?next=/review/").content.decode()
    field = re.search(r"<input[^>]*name=\"otp_token\"[^>]*>", page).group(0)
    assert 'autocomplete="one-time-code"' in field and 'inputmode="numeric"' in field

    response = client.post(CODE_PAGE, {"otp_token": totp_code(device), "next": "/review/"})
    assert response.status_code == 302 and response["Location"] == "/review/"
    assert client.get("/review/").status_code == 200
    used = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_USED)
    assert used.actor == supervisor and used.details == {"method": "totp"}


def test_a_wrong_code_is_refused_audited_and_throttled(client, supervisor):
    device = enrolled(supervisor)
    sign_in(client, "super")
    right = totp_code(device)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    page = client.post(CODE_PAGE, {"otp_token": wrong}).content.decode()
    assert "That code is not right." in page
    assert client.get("/").status_code == 302
    failed = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_FAILED)
    assert failed.actor == supervisor
    assert failed.details == {"method": "totp", "stage": "sign_in"}
    assert wrong not in repr(list(AuditEvent.objects.values()))

    # Right after a wrong code even the right one waits (django-otp's throttle).
    page = client.post(CODE_PAGE, {"otp_token": right}).content.decode()
    assert "Too many wrong codes. Wait" in page
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(details__throttled=True).count() == 1
    for _ in range(3):
        client.post(CODE_PAGE, {"otp_token": right})
    assert AuditEvent.objects.filter(details__throttled=True).count() == 1  # no flood

    # Once the wait is over, the right code works.
    device.refresh_from_db()
    assert device.throttling_failure_count == 1  # refused tries while waiting do not count
    TOTPDevice.objects.filter(pk=device.pk).update(
        throttling_failure_timestamp=timezone.now() - datetime.timedelta(minutes=1)
    )
    response = client.post(CODE_PAGE, {"otp_token": right})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_a_malformed_code_gets_a_message_next_to_the_field(client, supervisor):
    enrolled(supervisor)
    sign_in(client, "super")
    for junk in ("", "12345", "abcdef", "1234567", "\x00"):
        page = client.post(CODE_PAGE, {"otp_token": junk}).content.decode()
        assert "Enter the 6-digit code shown in your authenticator app." in page or (
            "Null characters are not allowed." in page
        ), junk
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SECOND_FACTOR_FAILED).exists()


def enrol_through_the_pages(client, username: str = "super") -> list[str]:
    """Sign in for the first time: scan (read the key of) the QR code, confirm, get the codes."""
    sign_in(client, username)
    response = client.get("/")
    assert response["Location"] == f"{ENROL_PAGE}?next=/"
    page = client.get(response["Location"]).content.decode()
    assert "<svg" in page and "qr-path" in page
    device = TOTPDevice.objects.get(user__username=username, confirmed=False)
    response = client.post(ENROL_PAGE, {"otp_token": totp_code(device), "next": "/"})
    assert response.status_code == 200
    return recovery_codes_on(response.content.decode())


def recovery_codes_on(page: str) -> list[str]:
    return re.findall(r"<li class=\"col\">([a-z2-7]{4}-[a-z2-7]{4})</li>", page)


def test_enrolment_by_qr_code_then_a_confirmation_then_the_recovery_codes_once(client, supervisor):
    sign_in(client, "super")
    assert client.get("/review/")["Location"] == f"{ENROL_PAGE}?next=/review/"
    page = client.get(f"{ENROL_PAGE}?next=/review/").content.decode()
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert "style=" not in svg and "<script" not in svg  # allowed by the strict CSP
    device = TOTPDevice.objects.get(user=supervisor, confirmed=False)
    secret = re.search(r'id="otp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert base64.b32decode(secret) == device.bin_key
    # The same key on a reload: a scan is not undone by it.
    client.get(ENROL_PAGE)
    assert TOTPDevice.objects.get(user=supervisor).pk == device.pk
    for path in GUARDED:
        assert client.get(path)["Location"].startswith(ENROL_PAGE), path

    page = client.post(ENROL_PAGE, {"otp_token": "000000"}).content.decode()
    if totp_code(device) != "000000":
        assert "That code is not right." in page
        device.refresh_from_db()
        TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)
        failed = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_FAILED)
        assert failed.details == {"method": "totp", "stage": "enrolment"}

    response = client.post(ENROL_PAGE, {"otp_token": totp_code(device), "next": "/review/"})
    page = response.content.decode()
    codes = recovery_codes_on(page)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'href="/review/"' in page
    assert "no-store" in response["Cache-Control"]
    enrolment = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_ENROLLED)
    assert enrolment.actor == supervisor
    assert enrolment.details == {"method": "totp", "recovery_codes": 10}
    log = repr(list(AuditEvent.objects.values()))
    assert not any(code.replace("-", "") in log for code in codes)
    assert device.key not in log and secret not in log

    assert client.get("/review/").status_code == 200
    # Shown once: the enrolment page is gone, and nothing shows the codes again.
    assert client.get(ENROL_PAGE)["Location"] == "/"
    assert not any(code in client.get("/").content.decode() for code in codes)


def test_once_enrolled_a_password_alone_cannot_add_an_authenticator(client, supervisor):
    enrolled(supervisor)
    sign_in(client, "super")
    response = client.get(ENROL_PAGE)
    assert response.status_code == 302 and response["Location"].startswith(CODE_PAGE)
    client.post(ENROL_PAGE, {"otp_token": "123456"})
    assert TOTPDevice.objects.filter(user=supervisor).count() == 1


def test_a_recovery_code_works_once(client, supervisor):
    codes = enrol_through_the_pages(client)
    client.post("/logout/")

    sign_in(client, "super")
    page = client.get(RECOVERY_PAGE).content.decode()
    assert 'autocomplete="off"' in page
    response = client.post(RECOVERY_PAGE, {"recovery_code": codes[0].upper(), "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    page = client.get("/").content.decode()
    assert "You signed in with a recovery code; 9 remain." in page
    used = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_USED)
    assert used.details == {"method": "recovery_code", "recovery_codes_left": 9}
    client.post("/logout/")

    sign_in(client, "super")
    page = client.post(RECOVERY_PAGE, {"recovery_code": codes[0]}).content.decode()
    assert "That recovery code is not right, or it was used already." in page
    assert client.get("/").status_code == 302
    assert StaticToken.objects.filter(device__user=supervisor).count() == 9


def test_sign_out_is_reachable_before_the_second_factor(client, supervisor):
    enrolled(supervisor)
    sign_in(client, "super")
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert "_auth_user_id" not in client.session


def test_a_compliance_admin_needs_the_second_factor_too(client, compliance):
    device = enrolled(compliance)
    sign_in(client, "compliance")
    assert client.get("/compliance/audit/")["Location"].startswith(CODE_PAGE)
    client.post(CODE_PAGE, {"otp_token": totp_code(device)})
    assert client.get("/compliance/audit/").status_code == 200


def test_a_superuser_needs_the_second_factor_for_the_admin(client, db):
    root = make_user(None, username="root", is_superuser=True, is_staff=True)
    device = enrolled(root)
    response = sign_in(client, "root", "/admin/login/?next=/admin/")
    assert response["Location"] == "/admin/"
    for path in ("/admin/", "/admin/registrations/user/", "/admin/registrations/auditevent/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(CODE_PAGE), path
    client.post(CODE_PAGE, {"otp_token": totp_code(device)})
    assert client.get("/admin/").status_code == 200
    # The devices are not in the admin: they change through the audited services only.
    assert TOTPDevice not in site._registry and StaticDevice not in site._registry


def test_counter_staff_are_not_asked_unless_the_setting_says_so(client, staff, settings):
    sign_in(client, "counter")
    assert client.get("/").status_code == 200
    client.post("/logout/")

    settings.SECOND_FACTOR_FOR_COUNTER = True
    sign_in(client, "counter")
    assert client.get("/")["Location"] == f"{ENROL_PAGE}?next=/"


def test_with_the_setting_on_counter_staff_enrol_and_pass(client, staff, settings):
    settings.SECOND_FACTOR_FOR_COUNTER = True
    codes = enrol_through_the_pages(client, "counter")
    assert len(codes) == 10
    assert client.get("/").status_code == 200


def test_the_second_factor_pages_are_refused_to_those_who_need_none(client, staff):
    sign_in(client, "counter")
    for path in (CODE_PAGE, ENROL_PAGE, RECOVERY_PAGE):
        assert client.get(path).status_code == 403, path


# Resets ------------------------------------------------------------------------------------------


@pytest.fixture
def signed_in_supervisor(client, supervisor):
    device = enrolled(supervisor)
    sign_in(client, "super")
    client.post(CODE_PAGE, {"otp_token": totp_code(device)})
    assert client.get("/").status_code == 200
    return client


def test_a_supervisor_resets_the_second_factor_of_counter_staff_of_their_store(
    signed_in_supervisor, staff, settings
):
    client = signed_in_supervisor
    settings.SECOND_FACTOR_FOR_COUNTER = True
    enrolled(staff)
    StaticDevice.objects.create(user=staff, name="recovery codes", confirmed=True)
    page = client.get("/account/staff/").content.decode()
    assert "counter" in page and "Reset second factor" in page
    assert 'href="/account/staff/"' in client.get("/").content.decode()  # in the navigation

    response = client.post(f"/account/staff/{staff.pk}/second-factor/reset/", follow=True)
    assert "The second factor of counter was reset" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=staff).exists()
    assert not StaticDevice.objects.filter(user=staff).exists()
    reset = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_RESET)
    assert reset.actor_username == "super" and reset.store_code == "MK01"
    assert reset.details == {"object": "user", "username": "counter", "devices": 2}

    # The member of staff enrols again at their next sign-in.
    other = client.__class__()
    sign_in(other, "counter")
    assert other.get("/")["Location"].startswith(ENROL_PAGE)


def test_a_supervisor_of_another_store_can_reset_nothing(client, staff, db):
    elsewhere = make_store(code="TST1", name="Tsuen Wan")
    other = make_user(roles.SUPERVISOR, supervises=[elsewhere], username="other-super")
    device = enrolled(other)
    enrolled(staff)
    sign_in(client, "other-super")
    client.post(CODE_PAGE, {"otp_token": totp_code(device)})
    assert "<td>counter</td>" not in client.get("/account/staff/").content.decode()
    assert client.post(f"/account/staff/{staff.pk}/second-factor/reset/").status_code == 404
    response = client.post(
        f"/account/staff/{staff.pk}/password/",
        {"new_password1": "a new long passphrase", "new_password2": "a new long passphrase"},
    )
    assert response.status_code == 404
    assert TOTPDevice.objects.filter(user=staff).exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SECOND_FACTOR_RESET).exists()


def test_a_supervisor_cannot_reset_another_supervisor(signed_in_supervisor, store):
    colleague = make_user(roles.SUPERVISOR, supervises=[store], stores=[store], username="peer")
    enrolled(colleague)
    client = signed_in_supervisor
    assert client.post(f"/account/staff/{colleague.pk}/second-factor/reset/").status_code == 404
    assert TOTPDevice.objects.filter(user=colleague).exists()


def test_a_supervisor_gives_counter_staff_a_new_password(signed_in_supervisor, staff):
    client = signed_in_supervisor
    page = client.get(f"/account/staff/{staff.pk}/password/").content.decode()
    assert "New password for counter" in page
    page = client.post(
        f"/account/staff/{staff.pk}/password/", {"new_password1": "x", "new_password2": "y"}
    ).content.decode()
    assert "password fields didn" in page  # Django's own message, next to the field
    response = client.post(
        f"/account/staff/{staff.pk}/password/",
        {"new_password1": "a new long passphrase", "new_password2": "a new long passphrase"},
    )
    assert response.status_code == 302 and response["Location"] == "/account/staff/"
    changed = AuditEvent.objects.filter(action=AuditEvent.Action.USER_CHANGED).last()
    assert changed.actor_username == "super" and changed.fields == ["password"]
    assert changed.details == {"object": "user", "username": "counter", "reset": True}
    assert "a new long passphrase" not in repr(list(AuditEvent.objects.values()))
    sign_in(client.__class__(), "counter", password="a new long passphrase")


def test_a_superuser_resets_anyones_second_factor_from_the_admin(client, supervisor):
    root = make_user(None, username="root", is_superuser=True, is_staff=True)
    device = enrolled(root)
    enrolled(supervisor)
    sign_in(client, "root")
    client.post(CODE_PAGE, {"otp_token": totp_code(device)})
    response = client.post(
        reverse("admin:registrations_user_changelist"),
        {"action": "reset_second_factor", "_selected_action": [supervisor.pk]},
        follow=True,
    )
    assert "The second factor of 1 user was reset." in response.content.decode()
    assert not TOTPDevice.objects.filter(user=supervisor).exists()
    reset = AuditEvent.objects.get(action=AuditEvent.Action.SECOND_FACTOR_RESET)
    assert reset.actor == root and reset.details["username"] == "super"


def test_the_staff_page_is_for_supervisors_only(client, staff, compliance):
    sign_in(client, "counter")
    assert client.get("/account/staff/").status_code == 403
    assert client.post(f"/account/staff/{staff.pk}/second-factor/reset/").status_code == 403
