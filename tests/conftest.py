import pytest
from django.db import connection
from django.test import Client

from registrations import crypto, roles
from tests import browser as browsers
from tests import storage as test_storage
from tests import urls
from tests.factories import make_store, make_user, pass_second_factor


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Tests marked `postgres_only` (row locks, triggers, database roles) are skipped on
    SQLite, the default; `make test-postgres` runs them."""
    if item.get_closest_marker("postgres_only") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (DATABASE_URL is SQLite)")


@pytest.fixture(autouse=True)
def _force_login_passes_the_second_factor(request, monkeypatch):
    """A test that signs a user in with `client.force_login` gets a session that has passed the
    second factor too, as if the user had entered a code; the pages under test stay the point.

    Tests marked `second_factor` sign in through the real pages instead.
    """
    if request.node.get_closest_marker("second_factor"):
        return
    force_login = Client.force_login

    def force_login_with_second_factor(self, user, backend=None):
        force_login(self, user, backend)
        pass_second_factor(self, user)

    monkeypatch.setattr(Client, "force_login", force_login_with_second_factor)


@pytest.fixture
def store(db):
    return make_store(code="MK01", name="Mong Kok")


@pytest.fixture
def other_store(db):
    return make_store(code="CWB1", name="Causeway Bay")


@pytest.fixture
def staff(store):
    return make_user(roles.COUNTER_STAFF, stores=[store], username="counter")


@pytest.fixture
def supervisor(store, other_store):
    return make_user(roles.SUPERVISOR, supervises=[store, other_store], username="super")


@pytest.fixture
def compliance(db):
    return make_user(roles.COMPLIANCE_ADMIN, username="compliance")


@pytest.fixture(scope="session", autouse=True)
def _s3_test_bucket():
    """With SIMREG_TEST_S3_ENDPOINT, the bucket of this test run: made first, emptied and
    removed at the end."""
    if not test_storage.s3_mode():
        yield None
        return
    bucket = test_storage.s3_bucket_create()
    try:
        yield bucket
    finally:
        test_storage.s3_bucket_remove(bucket)


@pytest.fixture
def private_storage(settings, tmp_path):
    """Document copies (and audit exports) go to a place of this test only: a folder, or on
    S3 a prefix of the test run's bucket. Read it through tests/storage.py."""
    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    if test_storage.s3_mode():
        test_storage.s3_prefix_for_test(settings)
    return settings.PRIVATE_STORAGE_ROOT


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def exports_folder(settings, tmp_path):
    """Audit exports written by the job worker go to a folder of this test only (they go
    through the default storage, whose root is MEDIA_ROOT)."""
    settings.MEDIA_ROOT = settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    return settings.MEDIA_ROOT / "audit-exports"


@pytest.fixture
def url_world(db) -> urls.World:
    """A user of each role and a record in every state, to fill every URL of the site with."""
    return urls.make_world()


@pytest.fixture
def decrypted(monkeypatch) -> list[str]:
    """Which stored fields ("Model.field") are decrypted while a test runs."""
    seen: list[str] = []
    real = crypto.decrypt_text

    def spy(token: str, *, where: str = "a stored value") -> str:
        seen.append(where)
        return real(token, where=where)

    monkeypatch.setattr(crypto, "decrypt_text", spy)
    return seen


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, one per test module (tests.browser)."""
    yield from browsers.launched_browser()


@pytest.fixture
def page(browser):
    """A fresh browser context and page at a desktop size."""
    yield from browsers.new_page(browser)
