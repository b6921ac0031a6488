import pytest

from registrations import roles
from tests.factories import make_store, make_user


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


@pytest.fixture
def private_storage(settings, tmp_path):
    """Document copies go to a folder of this test only."""
    settings.PRIVATE_STORAGE_ROOT = tmp_path / "private"
    return settings.PRIVATE_STORAGE_ROOT


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client
