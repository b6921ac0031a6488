"""The Django admin: superusers manage stores, users and roles; audit events are read-only there;
identity data has no place in it."""

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registrations import roles
from registrations.audit import audit_record
from registrations.crypto import EncryptedFieldMixin
from registrations.models import AuditEvent, Store, User
from tests.factories import make_user

pytestmark = pytest.mark.django_db


def encrypted_field_names() -> set[str]:
    """Every identity field of the app: the encrypted ones, wherever they are."""
    from django.apps import apps

    return {
        field.name
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, EncryptedFieldMixin)
    }


@pytest.fixture
def superuser(db):
    return make_user(None, is_superuser=True, is_staff=True, username="root")


@pytest.fixture
def admin_client(client, superuser):
    client.force_login(superuser)
    return client


@pytest.fixture
def one_of_each(store, staff):
    """An object of every registered model, so that each change page can be opened."""
    roles.ensure_roles()
    event = audit_record(actor=staff, action="viewed", store=store)
    return {Store: store, User: staff, Group: Group.objects.first(), AuditEvent: event}


def searched_field(model, search: str):
    """The model field an admin search_fields entry ends on, following relations."""
    field = None
    for part in search.lstrip("=^@").split("__"):
        opts = field.related_model._meta if field is not None else model._meta
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:  # a lookup such as __exact
            break
    return field


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def input_names(page: str) -> set[str]:
    return set(re.findall(r'<(?:input|select|textarea)[^>]*\bname="([^"]+)"', page))


def test_every_registered_model_lists_and_opens_for_a_superuser(admin_client, one_of_each):
    assert set(admin.site._registry) == {Store, User, Group, AuditEvent}
    assert admin_client.get(reverse("admin:index")).status_code == 200
    for model, obj in one_of_each.items():
        assert admin_client.get(admin_url(model, "changelist")).status_code == 200, model
        assert admin_client.get(admin_url(model, "change", obj.pk)).status_code == 200, model


def test_people_registrations_and_documents_are_not_in_the_admin():
    """Nor any other model of the app but stores, users and (read-only) audit events."""
    models = list(apps.get_app_config("registrations").get_models())
    shown = {model for model in models if admin.site.is_registered(model)}
    assert shown == {Store, User, AuditEvent}
    assert {"Person", "Registration", "DocumentCopy", "KeyCanary"} <= {m.__name__ for m in models}


def test_no_admin_form_has_or_searches_an_identity_field(admin_client, one_of_each):
    identity = encrypted_field_names()
    assert {"name_en", "document_number", "date_of_birth", "new_address"} <= identity
    for model, model_admin in admin.site._registry.items():
        own_plain_fields = {
            f.name for f in model._meta.get_fields() if not isinstance(f, EncryptedFieldMixin)
        }
        assert not [f for f in model._meta.get_fields() if isinstance(f, EncryptedFieldMixin)]
        pages = [
            admin_url(model, "changelist"),
            admin_url(model, "add"),
            admin_url(model, "change", one_of_each[model].pk),
        ]
        for url in pages:
            response = admin_client.get(url)
            assert response.status_code in {200, 403}, url  # 403: adding an audit event
            names = input_names(response.content.decode())
            # A store's address or a user's e-mail is not a customer's: only names that are
            # identity fields and not a plain field of this very model would be a leak.
            assert not (names & (identity - own_plain_fields)), url
        for search in model_admin.search_fields:
            assert not isinstance(searched_field(model, search), EncryptedFieldMixin), search


def test_audit_events_cannot_be_added_changed_or_deleted_in_the_admin(admin_client, one_of_each):
    event = one_of_each[AuditEvent]
    assert admin_client.get(admin_url(AuditEvent, "add")).status_code == 403
    assert admin_client.get(admin_url(AuditEvent, "delete", event.pk)).status_code == 403
    page = admin_client.get(admin_url(AuditEvent, "change", event.pk)).content.decode()
    assert 'name="_save"' not in page and 'name="reason"' not in page
    response = admin_client.post(
        admin_url(AuditEvent, "change", event.pk), {"reason": "edited", "action": "approved"}
    )
    assert response.status_code == 403
    admin_client.post(
        admin_url(AuditEvent, "changelist"),
        {"action": "delete_selected", "_selected_action": [event.pk], "post": "yes"},
    )
    AuditEvent.objects.get(pk=event.pk, reason="", action="viewed")  # untouched
    changelist = admin_client.get(admin_url(AuditEvent, "changelist")).content.decode()
    assert "delete_selected" not in changelist


@pytest.mark.parametrize("term", ["12", "not-a-number", "counter", "abcde-fghjk", "'"])
def test_searching_audit_events_never_fails(admin_client, one_of_each, term):
    response = admin_client.get(admin_url(AuditEvent, "changelist"), {"q": term})
    assert response.status_code == 200


@pytest.mark.parametrize(
    "query", ["store_code=%00", "action=%00", "q=%00", "q=counter%00x", "store_code=MK01&q=a%00"]
)
def test_a_nul_in_the_filters_of_a_list_is_a_bad_request_not_a_server_error(
    admin_client, one_of_each, query
):
    """PostgreSQL refuses text holding a NUL: the admin answers 400 before it queries."""
    for model in (AuditEvent, User, Store, Group):
        response = admin_client.get(f"{admin_url(model, 'changelist')}?{query}")
        assert response.status_code == 400, model


def test_audit_event_search_matches_number_username_and_reference(admin_client, one_of_each):
    event = one_of_each[AuditEvent]
    for term in (str(event.id), "counter"):
        page = admin_client.get(admin_url(AuditEvent, "changelist"), {"q": term}).content.decode()
        assert admin_url(AuditEvent, "change", event.pk) in page
    page = admin_client.get(admin_url(AuditEvent, "changelist"), {"q": "nobody"}).content.decode()
    assert admin_url(AuditEvent, "change", event.pk) not in page


def test_a_store_changed_in_the_admin_is_an_audit_event_with_the_field_names(
    admin_client, superuser, store
):
    response = admin_client.post(
        admin_url(Store, "change", store.pk),
        {"code": "MK01", "name": "Mong Kok Central", "name_zh": "", "address": "", "is_active": ""},
    )
    assert response.status_code == 302
    store.refresh_from_db()
    assert store.name == "Mong Kok Central" and not store.is_active
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == AuditEvent.Action.USER_CHANGED
    assert event.actor == superuser
    assert event.store_code == "MK01"
    assert event.fields == ["is_active", "name", "name_zh"]
    assert event.details == {"object": "store", "id": store.pk, "created": False}
    assert "Mong Kok Central" not in str(event.details)


def test_adding_and_deleting_a_store_in_the_admin_are_audit_events(admin_client):
    admin_client.post(admin_url(Store, "add"), {"code": "TST1", "name": "Tsim Sha Tsui"})
    store = Store.objects.get(code="TST1")
    added = AuditEvent.objects.order_by("-id").first()
    assert added.details["created"] is True and added.store_code == "TST1"
    admin_client.post(admin_url(Store, "delete", store.pk), {"post": "yes"})
    assert not Store.objects.filter(code="TST1").exists()
    deleted = AuditEvent.objects.order_by("-id").first()
    assert deleted.details == {"object": "store", "id": store.pk, "deleted": True}


def test_roles_and_stores_of_a_user_are_set_in_the_admin_and_audited(
    admin_client, superuser, store, other_store
):
    roles.ensure_roles()
    user = make_user(None, username="newcomer")
    page = admin_client.get(admin_url(User, "change", user.pk)).content.decode()
    assert "Roles" in page and 'name="stores"' in page and 'name="supervised_stores"' in page
    supervisor_role = Group.objects.get(name=roles.SUPERVISOR)
    response = admin_client.post(
        admin_url(User, "change", user.pk),
        {
            "username": "newcomer",
            "first_name": "",
            "last_name": "",
            "email": "",
            "is_active": "on",
            "groups": [supervisor_role.pk],
            "stores": [],
            "supervised_stores": [store.pk, other_store.pk],
            "user_permissions": [],
            "date_joined_0": "2025-01-01",
            "date_joined_1": "09:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    user = User.objects.get(pk=user.pk)
    assert roles.allows(user, roles.REVIEW)
    assert set(user.supervised_stores.all()) == {store, other_store}
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == AuditEvent.Action.USER_CHANGED and event.actor == superuser
    assert {"groups", "supervised_stores"} <= set(event.fields)
    assert event.details["username"] == "newcomer"


def test_a_password_set_in_the_admin_is_an_audit_event_without_the_password(admin_client, staff):
    url = admin_url(User, "change", staff.pk).replace("/change/", "/password/")
    response = admin_client.post(
        url, {"password1": "a new Passphrase 42!", "password2": "a new Passphrase 42!"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.order_by("-id").first()
    assert event.action == AuditEvent.Action.USER_CHANGED
    assert event.fields == ["password"]
    assert "Passphrase" not in str(event.details)


def column_headers(page: str) -> list[str]:
    head = page.split('id="result_list"', 1)[1].split("</thead>", 1)[0]
    return [
        re.sub(r"<[^>]+>", "", text).strip()
        for text in re.findall(r'<th scope="col"[^>]*>(.*?)</th>', head, re.S)
    ]


def test_the_audit_event_list_has_few_labelled_columns_and_filters(
    admin_client, one_of_each, other_store
):
    event = one_of_each[AuditEvent]
    page = admin_client.get(admin_url(AuditEvent, "changelist")).content.decode()
    assert column_headers(page) == ["No.", "Time", "User", "Action", "Store", "Record"]
    assert "By action" in page and "By store" in page and "By store code" not in page
    assert "MK01 Mong Kok" in page and "CWB1 Causeway Bay" in page  # the store filter
    assert "Record viewed" in page  # the action's label, not its code
    for query, shown in [({"store_code": "MK01"}, True), ({"store_code": "CWB1"}, False)]:
        listed = admin_client.get(admin_url(AuditEvent, "changelist"), query).content.decode()
        assert (admin_url(AuditEvent, "change", event.pk) in listed) is shown, query
    for order in ["1", "-2", "4", "6"]:  # sorting by a column still works
        response = admin_client.get(admin_url(AuditEvent, "changelist"), {"o": order})
        assert response.status_code == 200, order


def test_the_admin_is_named_after_simreg(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert "simreg administration" in page and "Django administration" not in page


def test_the_user_list_shows_roles_and_stores(admin_client, store, other_store):
    make_user(roles.SUPERVISOR, supervises=[store, other_store], username="boss")
    make_user(roles.COUNTER_STAFF, stores=[other_store], username="clerk")
    page = admin_client.get(admin_url(User, "changelist")).content.decode()
    headers = column_headers(page)
    assert {"Roles", "Works at", "Supervises"} <= set(headers)
    rows = {
        re.search(r'<th class="field-username">.*?>([^<]+)</a>', row).group(1): row
        for row in re.findall(r"<tr>(.*?)</tr>", page.split("<tbody>", 1)[1], re.S)
    }
    assert "Supervisor" in rows["boss"] and "CWB1, MK01" in rows["boss"]
    assert "Counter staff" in rows["clerk"] and "CWB1" in rows["clerk"]
    assert "By role" in page


def test_the_user_list_costs_the_same_queries_for_2_or_10_users(admin_client, store, other_store):
    def queries_for_the_list() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(admin_url(User, "changelist")).status_code == 200
        return len(queries)

    make_user(roles.SUPERVISOR, supervises=[store], stores=[other_store])
    few = queries_for_the_list()
    for _ in range(8):
        make_user(roles.COUNTER_STAFF, stores=[store, other_store], supervises=[store])
    assert User.objects.count() == 10  # with the superuser signed in
    assert queries_for_the_list() == few


def test_the_role_picker_speaks_of_roles_not_groups(admin_client, staff):
    page = admin_client.get(admin_url(User, "change", staff.pk)).content.decode()
    picker = re.search(r'<select[^>]*name="groups"[^>]*>', page).group(0)
    assert 'data-field-name="roles"' in picker
    assert "What the user does: counter staff, supervisor, compliance." in page
