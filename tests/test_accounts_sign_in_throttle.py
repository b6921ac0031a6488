"""Sign-in throttle: each attempt is counted before its password is checked, per user name and
per user name and client address, so that no number of attempts in parallel checks more than
SIGN_IN_MAX_FAILURES passwords a window, and someone elsewhere cannot keep a user out."""

import datetime
import threading

import pytest
from django.contrib.auth import base_user
from django.db import connections
from django.test import Client
from django.utils import timezone

from registrations import selectors, services
from registrations.audit import Origin
from registrations.models import AuditEvent, SignInThrottle
from registrations.services.sign_in import name_window
from tests.factories import make_user

PASSWORD = "correct horse battery staple"
PARALLEL = 40


class PasswordChecks:
    """Counts every password hash the sign-in computes: a check against a stored hash, and the
    hash Django computes for a name that belongs to nobody (so that both take as long)."""

    def __init__(self, monkeypatch) -> None:
        self.count = 0
        self.lock = threading.Lock()
        # The functions a user's check_password and set_password call.
        for name in ("check_password", "make_password"):
            monkeypatch.setattr(base_user, name, self.counting(getattr(base_user, name)))

    def counting(self, function):
        def counted(*args, **kwargs):
            with self.lock:
                self.count += 1
            return function(*args, **kwargs)

        return counted


def sign_in(client: Client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def attempts_in_parallel(username: str, addresses: list[str]) -> list:
    """One wrong password per address, all at once, each from its own thread and connection."""
    barrier = threading.Barrier(len(addresses))
    outcomes: list = []

    def attempt(ip: str) -> None:
        try:
            barrier.wait()
            response = sign_in(Client(), username, "wrong password", ip=ip)
            outcomes.append(response.status_code)
        except Exception as exc:  # reported by the assertion on the outcomes
            outcomes.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=attempt, args=(ip,)) for ip in addresses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("spread", ["one address", "many addresses"])
@pytest.mark.parametrize("name", ["counter", "nobody-by-this-name"])
def test_attempts_in_parallel_check_no_more_passwords_than_the_limit(
    settings, monkeypatch, name, spread
):
    """40 attempts at once, from one address or from 40: at most SIGN_IN_MAX_FAILURES passwords
    are checked, whether the name belongs to someone or not."""
    make_user(None, username="counter")
    checks = PasswordChecks(monkeypatch)
    if spread == "one address":
        addresses = ["10.0.0.9"] * PARALLEL
    else:
        addresses = [f"10.9.0.{n}" for n in range(1, PARALLEL + 1)]
    outcomes = attempts_in_parallel(name, addresses)
    assert outcomes == [200] * PARALLEL
    assert 1 <= checks.count <= settings.SIGN_IN_MAX_FAILURES
    failed = AuditEvent.objects.filter(action="login_failed")
    assert failed.exclude(reason="locked").count() == checks.count
    assert failed.filter(reason="locked").exists()


def test_the_user_is_told_how_many_attempts_remain_then_for_how_long_the_name_is_locked(
    client, staff, settings
):
    settings.SIGN_IN_MAX_FAILURES = 3
    settings.SIGN_IN_LOCK_MINUTES = 15
    page = sign_in(client, "counter", "wrong").content.decode()
    assert "The user name or password is not correct." in page
    assert "2 more attempts before this user name is locked" in page
    page = sign_in(client, "counter", "wrong").content.decode()
    assert "1 more attempt before this user name is locked" in page
    page = sign_in(client, "counter", "wrong").content.decode()
    assert "Too many failed sign-ins for this user name. Try again in 15 minutes." in page
    page = sign_in(client, "counter", PASSWORD).content.decode()
    assert "Too many failed sign-ins" in page
    assert "_auth_user_id" not in client.session


def test_a_name_that_belongs_to_nobody_gets_the_same_answers(client, staff, settings):
    """The answers do not tell which names exist."""
    settings.SIGN_IN_MAX_FAILURES = 2
    for name in ("counter", "no-such-user"):
        first = sign_in(client, name, "wrong").content.decode()
        second = sign_in(client, name, "wrong").content.decode()
        assert "1 more attempt before this user name is locked" in first
        assert "Try again in 15 minutes" in second


def test_the_lock_is_explained_in_the_language_of_the_page(client, staff, settings):
    settings.SIGN_IN_MAX_FAILURES = 1
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hant"
    sign_in(client, "counter", "wrong")
    page = sign_in(client, "counter", "wrong").content.decode()
    assert "此用戶名稱登入失敗次數過多。請於 15 分鐘後再試。" in page


def test_a_lock_from_elsewhere_does_not_keep_the_user_out_where_they_sign_in(
    client, staff, settings
):
    settings.SIGN_IN_MAX_FAILURES = 3
    store = "10.0.0.1"
    assert sign_in(client, "counter", PASSWORD, ip=store).status_code == 302
    client.post("/logout/")

    attacker = Client()
    for _ in range(3):
        sign_in(attacker, "counter", "guess", ip="203.0.113.9")
    refused = sign_in(attacker, "counter", "guess", ip="203.0.113.9").content.decode()
    assert "Too many failed sign-ins" in refused
    # Another address the name never signed in from: held back by the name's own counter.
    other = sign_in(Client(), "counter", PASSWORD, ip="198.51.100.7").content.decode()
    assert "Too many failed sign-ins" in other

    # The store, where the user signs in: still in, and with their own attempts.
    page = sign_in(client, "counter", "typo", ip=store).content.decode()
    assert "2 more attempts before this user name is locked" in page
    assert sign_in(client, "counter", PASSWORD, ip=store).status_code == 302


def test_a_colleague_at_the_same_address_is_not_locked_out(client, staff, settings):
    """Never a lock by address alone: a whole store shares one behind its router."""
    settings.SIGN_IN_MAX_FAILURES = 3
    make_user(None, username="colleague")
    for _ in range(4):
        sign_in(client, "counter", "wrong", ip="10.0.0.9")
    assert sign_in(Client(), "colleague", PASSWORD, ip="10.0.0.9").status_code == 302


def test_a_success_starts_the_count_of_its_address_again(client, staff, settings):
    settings.SIGN_IN_MAX_FAILURES = 3
    for _ in range(2):
        sign_in(client, "counter", "wrong")
    assert sign_in(client, "counter", PASSWORD).status_code == 302
    client.post("/logout/")
    page = sign_in(client, "counter", "wrong").content.decode()
    assert "2 more attempts before this user name is locked" in page


def test_the_lock_ends_after_the_window(db, settings):
    settings.SIGN_IN_MAX_FAILURES = 2
    settings.SIGN_IN_LOCK_MINUTES = 15
    origin = Origin(ip="10.0.0.1")
    start = timezone.now()
    for _ in range(2):
        assert services.sign_in_attempt_start(username="counter", origin=origin, now=start).allowed
    soon = start + datetime.timedelta(minutes=14)
    refused = services.sign_in_attempt_start(username="counter", origin=origin, now=soon)
    assert not refused.allowed
    assert refused.locked_until == start + datetime.timedelta(minutes=15)
    assert selectors.sign_in_locked_until(username="counter", ip="10.0.0.1", now=soon)

    later = start + datetime.timedelta(minutes=15, seconds=1)
    assert selectors.sign_in_locked_until(username="counter", ip="10.0.0.1", now=later) is None
    attempt = services.sign_in_attempt_start(username="counter", origin=origin, now=later)
    assert attempt.allowed and attempt.remaining == 1


def test_each_lock_of_a_name_in_a_row_lasts_longer_up_to_a_limit(db, settings):
    """Guessing from many addresses gets slower and slower: the name's window doubles each time
    it is used up, up to SIGN_IN_LOCK_MAX_HOURS."""
    settings.SIGN_IN_MAX_FAILURES = 2
    settings.SIGN_IN_LOCK_MINUTES = 15
    settings.SIGN_IN_LOCK_MAX_HOURS = 2
    now = timezone.now()
    locks = []
    for round_number in range(5):
        for n in range(2):
            origin = Origin(ip=f"198.51.100.{round_number * 2 + n}")
            assert services.sign_in_attempt_start(username="root", origin=origin, now=now).allowed
        refused = services.sign_in_attempt_start(
            username="root", origin=Origin(ip="192.0.2.1"), now=now
        )
        assert not refused.allowed
        locks.append(refused.locked_until - now)
        now = refused.locked_until
    minutes = [int(lock.total_seconds() // 60) for lock in locks]
    assert minutes == [15, 30, 60, 120, 120]
    assert name_window(strikes=0) == datetime.timedelta(minutes=15)


def test_the_admin_sign_in_page_counts_on_the_same_counters(client, db, settings):
    settings.SIGN_IN_MAX_FAILURES = 3
    make_user(None, username="root", is_superuser=True, is_staff=True)
    for _ in range(2):
        sign_in(client, "root", "wrong")
    page = client.post(
        "/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.1"
    ).content.decode()
    assert "Try again in 15 minutes" in page
    page = client.post(
        "/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    ).content.decode()
    assert "Too many failed sign-ins" in page
    assert "_auth_user_id" not in client.session


def test_the_counters_never_hold_a_name_or_an_address_as_typed(client, staff):
    sign_in(client, "Tr0ub4dor&3", "x", ip="203.0.113.77")
    sign_in(client, "counter", "x", ip="203.0.113.77")
    stored = repr(list(SignInThrottle.objects.values()))
    assert "Tr0ub4dor" not in stored and "counter" not in stored and "203.0.113" not in stored
    assert SignInThrottle.objects.count() == 4


def test_counters_that_hold_nothing_back_are_purged(db, settings):
    settings.SIGN_IN_LOCK_MAX_HOURS = 24
    long_ago = timezone.now() - datetime.timedelta(days=3)
    services.sign_in_attempt_start(username="counter", origin=Origin(ip="10.0.0.1"), now=long_ago)
    attempt = services.sign_in_attempt_start(username="counter", origin=Origin(ip="10.0.0.2"))
    services.sign_in_attempt_succeeded(attempt=attempt)
    assert SignInThrottle.objects.count() == 3
    assert services.sign_in_counters_purge() == 1  # the old address; not the trusted one
    assert SignInThrottle.objects.count() == 2
