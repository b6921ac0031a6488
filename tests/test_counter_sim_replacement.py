"""A lost, stolen or damaged SIM reported at any store, and its replacement SIM: the identity
checked again, the registration suspended at once, the new SIM approved by a supervisor of the
registration's store, the old SIM released."""

import datetime
import threading

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, connections

from registrations import roles, selectors, services
from registrations.models import (
    AuditEvent,
    Notification,
    PendingChange,
    Registration,
    StatusChange,
    StoreStatusCount,
)
from tests.factories import (
    CUSTOMER,
    VALID_EID,
    VALID_ICCID,
    VALID_ICCID_20,
    make_approved,
    make_complete_draft,
    make_person,
    make_user,
    materials_form,
    start_draft,
    url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_storage")]

# What the customer at the counter gives: the record has "CHAN Tai Man", "陳大文𠮷", A1234563,
# born 1990-05-17 (tests.factories.CUSTOMER).
RIGHT = services.IdentityCheck(
    document_type="hkid",
    document_number="A1234563",
    name_en="chan  tai man",
    date_of_birth=datetime.date(1990, 5, 17),
)
IDENTITY_VALUES = ("CHAN", "Tai Man", "陳大文", "𠮷", "A1234563", "A123456", "1990-05-17")


@pytest.fixture
def clerk(other_store):
    """Counter staff of Causeway Bay, serving a Mong Kok customer."""
    return make_user(roles.COUNTER_STAFF, stores=[other_store], username="cwb-clerk")


@pytest.fixture
def mk_supervisor(store):
    return make_user(roles.SUPERVISOR, supervises=[store], username="mk-super")


@pytest.fixture
def approved(store, staff, supervisor):
    return make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        msisdn="+85261234567",
        iccid=VALID_ICCID,
    )


def counts(store) -> dict[str, int]:
    return dict(StoreStatusCount.objects.filter(store=store).values_list("status", "count"))


def identity_form(**overrides) -> dict:
    values = {
        "document_type": "hkid",
        "document_number": "a123456(3)",
        "name_en": "Tai Man CHAN",
        "name_zh": "",
        "date_of_birth": "1990-05-17",
    }
    values.update(overrides)
    return values


def assert_no_identity_value(event: AuditEvent) -> None:
    text = repr(event.details) + event.reason + repr(event.fields)
    for value in IDENTITY_VALUES:
        assert value not in text, (event.action, value)


# The identity check


@pytest.mark.parametrize(
    "given",
    [
        {"name_en": "CHAN Tai Man"},
        {"name_en": "tai man chan"},
        {"name_en": "  Chan   TAI  man "},
        {"name_en": "", "name_zh": "陳大文𠮷"},
        {"name_en": "Tai Man Chan", "name_zh": "陳大文𠮷"},
    ],
)
def test_identity_matches_english_names_in_any_case_spacing_and_order(approved, given):
    identity = services.IdentityCheck(
        document_type="hkid",
        document_number="A123456(3)",
        date_of_birth=datetime.date(1990, 5, 17),
        **{"name_en": "", **given},
    )
    from registrations.services.counter.service import identity_matches

    assert identity_matches(approved, identity)


@pytest.mark.parametrize(
    "given",
    [
        {"document_number": "Z683365A"},
        {"document_type": "passport", "document_number": "A1234563"},
        {"name_en": "CHAN Tai"},
        {"name_en": "", "name_zh": "陳大文吉"},
        {"name_en": "", "name_zh": "陳大文"},
        {"name_zh": "陳大文 𠮷"},
        {"date_of_birth": datetime.date(1990, 5, 18)},
        {"date_of_birth": None},
        {"name_en": "", "name_zh": ""},
    ],
)
def test_identity_does_not_match_another_document_name_or_birth_date(approved, given):
    from registrations.services.counter.service import identity_matches

    values = {
        "document_type": "hkid",
        "document_number": "A1234563",
        "name_en": "CHAN Tai Man",
        "name_zh": "",
        "date_of_birth": datetime.date(1990, 5, 17),
        **given,
    }
    assert not identity_matches(approved, services.IdentityCheck(**values))


# Loss report


def test_a_loss_reported_at_another_store_suspends_the_registration_at_once(
    client, clerk, approved, store, other_store
):
    before = counts(store)
    client.force_login(clerk)
    response = client.post(url("counter-loss", approved), {**identity_form(), "sim_loss": "stolen"})
    assert response.status_code == 302, response.context["form"].errors
    assert response.url == url("counter-service", approved) + "?purpose=sim_loss"
    approved.refresh_from_db()
    assert approved.status == "suspended"
    assert approved.sim_loss == "stolen" and approved.suspended_at is not None
    assert approved.iccid == VALID_ICCID, "the SIM stays on the record until a replacement"
    [line] = StatusChange.objects.filter(registration=approved)
    assert (line.from_status, line.to_status, line.actor) == ("approved", "suspended", clerk)
    after = counts(store)
    assert after["approved"] == before["approved"] - 1
    assert after.get("suspended", 0) == before.get("suspended", 0) + 1
    assert selectors.store_status_counts_drift() == []
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.SUSPENDED)
    assert event.registration_reference == approved.reference
    assert event.store_code == store.code, "the record's store, whose chain holds its events"
    assert event.details["at_store"] == other_store.code
    assert event.details["sim_loss"] == "stolen"
    assert_no_identity_value(event)
    [note] = Notification.objects.filter(registration=approved, event="suspended")[:1]
    assert note.channel in {"sms", "email"}


def test_a_wrong_identity_check_suspends_nothing_and_says_so_plainly(
    client, clerk, approved, store
):
    before = counts(store)
    client.force_login(clerk)
    response = client.post(
        url("counter-loss", approved),
        {**identity_form(date_of_birth="1990-05-18"), "sim_loss": "lost"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "The details entered do not match this registration" in page
    assert "date of birth does not" not in page.lower(), "which field is never said"
    form = response.context["form"]
    assert form["name_en"].value() == "Tai Man CHAN", "what was typed is kept"
    approved.refresh_from_db()
    assert approved.status == "approved" and approved.sim_loss == ""
    assert counts(store) == before
    assert not StatusChange.objects.filter(registration=approved).exists()
    assert not Notification.objects.filter(registration=approved).exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.SUSPENDED).exists()
    [failed] = AuditEvent.objects.filter(action=AuditEvent.Action.IDENTITY_CHECK_FAILED)
    assert failed.registration_reference == approved.reference
    assert_no_identity_value(failed)


def test_a_loss_needs_an_approved_registration(clerk, store, staff):
    pending = make_complete_draft(store=store, created_by=staff)
    with pytest.raises(ValidationError):
        services.registration_report_sim_loss(
            registration=pending, actor=clerk, identity=RIGHT, loss="lost"
        )


def test_only_counter_staff_report_a_loss(approved, mk_supervisor):
    with pytest.raises(PermissionDenied):
        services.registration_report_sim_loss(
            registration=approved, actor=mk_supervisor, identity=RIGHT, loss="lost"
        )


# Replacement


def ask_replacement(registration, actor, **overrides):
    values = {
        "registration": registration,
        "actor": actor,
        "identity": RIGHT,
        "sim_kind": "physical",
        "iccid": VALID_ICCID_20,
        **overrides,
    }
    return services.registration_request_replacement(**values)


def test_replacement_on_an_approved_registration_reports_the_loss_in_the_same_step(
    client, clerk, approved, other_store
):
    client.force_login(clerk)
    response = client.post(
        url("counter-replace", approved),
        {
            **identity_form(),
            "sim_loss": "damaged",
            "new_sim_kind": "physical",
            "new_iccid": "8985 2001 2345 6789 0126",
        },
    )
    assert response.status_code == 302, response.context["form"].errors
    approved.refresh_from_db()
    assert approved.status == "suspended" and approved.sim_loss == "damaged"
    assert approved.iccid == VALID_ICCID, "the old SIM is kept until the approval"
    change = PendingChange.objects.get()
    assert change.kind == "replacement" and change.status == "pending"
    assert change.new_iccid == VALID_ICCID_20 and change.new_eid == ""
    assert change.requested_at_store == other_store and change.requested_by == clerk
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.REPLACEMENT_REQUESTED)
    assert event.details["change"] == change.pk and event.details["at_store"] == other_store.code
    assert_no_identity_value(event)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SUSPENDED).count() == 1


def test_an_approved_replacement_puts_the_new_sim_on_and_releases_the_old_one(
    clerk, approved, store, staff, supervisor, mk_supervisor
):
    services.registration_report_sim_loss(
        registration=approved, actor=clerk, identity=RIGHT, loss="lost"
    )
    change = ask_replacement(approved, clerk)
    # While the replacement waits, the old SIM is still held: nobody may register it.
    assert selectors.registration_active_clashes(iccid=VALID_ICCID) == {"iccid"}
    before = counts(store)
    services.pending_change_decide(change=change, reviewer=mk_supervisor, approve=True)
    approved.refresh_from_db()
    assert approved.status == "approved"
    assert (approved.sim_kind, approved.iccid, approved.eid) == ("physical", VALID_ICCID_20, "")
    assert approved.msisdn == "+85261234567", "the same mobile number"
    assert approved.sim_loss == "" and approved.suspended_at is None
    last = StatusChange.objects.filter(registration=approved).last()
    assert (last.from_status, last.to_status, last.actor) == (
        "suspended",
        "approved",
        mk_supervisor,
    )
    after = counts(store)
    assert after["approved"] == before["approved"] + 1
    assert after["suspended"] == before["suspended"] - 1
    assert selectors.store_status_counts_drift() == []
    assert selectors.registration_active_clashes(iccid=VALID_ICCID) == set(), "released"
    # A new registration may use the old SIM now.
    again = make_approved(store=store, created_by=staff, reviewer=supervisor, iccid=VALID_ICCID)
    assert again.iccid == VALID_ICCID
    [event] = AuditEvent.objects.filter(action=AuditEvent.Action.CHANGE_APPROVED)
    assert event.details == {"change": change.pk, "kind": "replacement", "approved": True}


def test_a_refused_replacement_leaves_the_registration_suspended(clerk, approved, mk_supervisor):
    change = ask_replacement(approved, clerk, loss="lost")
    services.pending_change_decide(
        change=change, reviewer=mk_supervisor, approve=False, reason_code="document_mismatch"
    )
    approved.refresh_from_db()
    assert approved.status == "suspended" and approved.iccid == VALID_ICCID
    # Another replacement may be asked for now, with the same new SIM.
    again = ask_replacement(approved, clerk)
    assert again.new_iccid == VALID_ICCID_20


def test_an_esim_replacement_takes_an_eid(clerk, approved, mk_supervisor):
    change = ask_replacement(approved, clerk, loss="lost", sim_kind="esim", iccid="", eid=VALID_EID)
    services.pending_change_decide(change=change, reviewer=mk_supervisor, approve=True)
    approved.refresh_from_db()
    assert (approved.sim_kind, approved.iccid, approved.eid) == ("esim", "", VALID_EID)


def test_a_replacement_never_changes_the_per_person_count(clerk, approved, mk_supervisor):
    def held() -> int:
        return selectors.person_active_sim_count(
            document_type="hkid", document_number="A1234563", plan="prepaid"
        )

    assert held() == 1
    services.registration_report_sim_loss(
        registration=approved, actor=clerk, identity=RIGHT, loss="lost"
    )
    assert held() == 1, "a suspended registration still holds its number"
    change = ask_replacement(approved, clerk)
    assert held() == 1
    services.pending_change_decide(change=change, reviewer=mk_supervisor, approve=True)
    assert held() == 1


@pytest.mark.parametrize(
    ("new_iccid", "message"),
    [
        ("8985200123456789018", "does not match the others"),
        ("12345", "19 or 20 digits"),
        ("", "Enter the ICCID printed on the new SIM card."),
    ],
)
def test_a_new_iccid_is_checked_beside_its_field(client, clerk, approved, new_iccid, message):
    client.force_login(clerk)
    response = client.post(
        url("counter-replace", approved),
        {**identity_form(), "sim_loss": "lost", "new_sim_kind": "physical", "new_iccid": new_iccid},
    )
    assert response.status_code == 200
    assert message in str(response.context["form"].errors["new_iccid"])
    approved.refresh_from_db()
    assert approved.status == "approved", "nothing suspended when the form is refused"


def test_a_new_sim_held_by_an_active_registration_is_refused_beside_its_field(
    client, clerk, approved, store, staff, supervisor
):
    make_approved(store=store, created_by=staff, reviewer=supervisor, iccid=VALID_ICCID_20)
    client.force_login(clerk)
    response = client.post(
        url("counter-replace", approved),
        {
            **identity_form(),
            "sim_loss": "lost",
            "new_sim_kind": "physical",
            "new_iccid": VALID_ICCID_20,
        },
    )
    assert response.status_code == 200
    assert "held by another registration" in str(response.context["form"].errors["new_iccid"])
    approved.refresh_from_db()
    assert approved.status == "approved"
    assert not PendingChange.objects.exists()
    # Its own SIM is no replacement either.
    with pytest.raises(ValidationError) as error:
        ask_replacement(approved, clerk, loss="lost", iccid=VALID_ICCID)
    assert "new_iccid" in error.value.error_dict


def test_a_new_sim_asked_for_by_another_pending_replacement_is_refused(
    clerk, approved, store, staff, supervisor
):
    other = make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        customer=make_person(document_number="Z683365A"),
    )
    other_identity = services.IdentityCheck(
        document_type="hkid",
        document_number="Z683365(A)",
        name_en=CUSTOMER["name_en"],
        date_of_birth=datetime.date(1990, 5, 17),
    )
    ask_replacement(other, clerk, identity=other_identity, loss="lost")
    with pytest.raises(ValidationError) as error:
        ask_replacement(approved, clerk, loss="lost")
    assert "Another replacement waiting for review" in str(error.value.error_dict["new_iccid"])
    approved.refresh_from_db()
    assert approved.status == "approved", "the refused replacement suspended nothing"


def test_a_suspended_registration_can_be_terminated(clerk, approved, store, mk_supervisor):
    services.registration_report_sim_loss(
        registration=approved, actor=clerk, identity=RIGHT, loss="stolen"
    )
    change = services.registration_request_termination(
        registration=approved, actor=clerk, reason="Customer gives up the number"
    )
    before = counts(store)
    services.pending_change_decide(change=change, reviewer=mk_supervisor, approve=True)
    approved.refresh_from_db()
    assert approved.status == "terminated"
    last = StatusChange.objects.filter(registration=approved).last()
    assert (last.from_status, last.to_status) == ("suspended", "terminated")
    assert counts(store)["suspended"] == before["suspended"] - 1
    assert selectors.store_status_counts_drift() == []


def test_four_eyes_the_requester_never_decides_the_replacement(store, approved):
    both = make_user(
        roles.COUNTER_STAFF, stores=[store], supervises=[store], username="clerk-and-super"
    )
    both.groups.add(Group.objects.get(name=roles.SUPERVISOR))
    change = ask_replacement(approved, both, loss="lost")
    with pytest.raises(ValidationError) as error:
        services.pending_change_decide(change=change, reviewer=both, approve=True)
    assert "Four-eyes" in str(error.value)
    change.refresh_from_db()
    assert change.status == "pending"


def test_a_supervisor_of_the_store_where_it_was_asked_does_not_decide(clerk, approved, other_store):
    cwb_supervisor = make_user(roles.SUPERVISOR, supervises=[other_store])
    change = ask_replacement(approved, clerk, loss="lost")
    assert change.requested_at_store == other_store
    with pytest.raises(PermissionDenied):
        services.pending_change_decide(change=change, reviewer=cwb_supervisor, approve=True)


def test_the_review_page_compares_the_old_and_new_sim(client, clerk, approved, mk_supervisor):
    ask_replacement(approved, clerk, loss="lost")
    client.force_login(mk_supervisor)
    page = client.get(url("review-detail", approved)).content.decode()
    assert 'id="suspended-notice"' in page
    section = page[page.index('class="table table-sm mb-1 replacement-comparison"') :]
    assert VALID_ICCID in section[: section.index("</table>")]
    assert VALID_ICCID_20 in section[: section.index("</table>")]
    assert "asked at CWB1" in page
    queue = client.get("/review/").content.decode()
    assert approved.reference in queue and "SIM replacement" in queue


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_counters_asking_for_the_same_new_sim_at_once_one_wins_the_other_gets_a_field_error(
    store, other_store, staff, supervisor
):
    clerk = make_user(roles.COUNTER_STAFF, stores=[other_store], username="cwb-clerk-2")
    first = make_approved(store=store, created_by=staff, reviewer=supervisor)
    second = make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        customer=make_person(document_number="Z683365A"),
    )
    identities = {
        first.pk: RIGHT,
        second.pk: services.IdentityCheck(
            document_type="hkid",
            document_number="Z683365A",
            name_en=CUSTOMER["name_en"],
            date_of_birth=datetime.date(1990, 5, 17),
        ),
    }
    barrier = threading.Barrier(2)
    outcomes: dict[int, object] = {}

    def ask(registration):
        try:
            barrier.wait()
            outcomes[registration.pk] = ask_replacement(
                registration, clerk, identity=identities[registration.pk], loss="lost"
            )
        except Exception as exc:  # the outcome is what the test looks at
            outcomes[registration.pk] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(r,)) for r in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes.values() if isinstance(o, PendingChange)]
    lost = [o for o in outcomes.values() if not isinstance(o, PendingChange)]
    assert len(won) == 1 and len(lost) == 1, outcomes
    assert isinstance(lost[0], ValidationError), lost[0]
    assert "new_iccid" in lost[0].error_dict
    assert PendingChange.objects.filter(new_iccid=VALID_ICCID_20).count() == 1
    loser = Registration.objects.get(pk=next(pk for pk, o in outcomes.items() if o is lost[0]))
    assert loser.status == "approved", "the refused ask suspended nothing"
    assert connection.vendor == "postgresql"


def test_a_sim_asked_for_by_a_waiting_replacement_cannot_be_registered_anew(
    clerk, approved, staff_client
):
    """The new SIM is promised to the replacement until a supervisor decides it."""
    ask_replacement(approved, clerk, loss="lost")
    draft = start_draft(staff_client)
    response = staff_client.post(
        url("counter-materials", draft), materials_form(iccid=VALID_ICCID_20)
    )
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "A replacement SIM waiting for review is this SIM" in str(errors["iccid"])
    assert response.context["form"]["iccid"].value() == VALID_ICCID_20, "what was typed is kept"


def test_a_taken_new_sim_is_refused_before_the_identity_is_checked(
    clerk, approved, store, staff, supervisor
):
    """Otherwise the clash message would tell a clerk that wrong-or-right details matched,
    without any event in the log: a taken SIM is refused the same whatever details are given."""
    make_approved(
        store=store,
        created_by=staff,
        reviewer=supervisor,
        customer=make_person(document_number="Z683365A"),
        iccid=VALID_ICCID_20,
        msisdn="+85261234000",
    )
    wrong = services.IdentityCheck(
        document_type="hkid", document_number="A1234563", name_en="Nobody", date_of_birth=None
    )
    for identity in (RIGHT, wrong):
        with pytest.raises(ValidationError) as error:
            ask_replacement(approved, clerk, identity=identity, loss="lost")
        assert "new_iccid" in error.value.error_dict
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.IDENTITY_CHECK_FAILED).exists()


def test_a_loss_report_without_what_happened_is_refused_before_the_identity_is_checked(
    clerk, approved
):
    """The same refusal whatever details are given: it never tells whether they matched."""
    wrong = services.IdentityCheck(
        document_type="hkid", document_number="A1234563", name_en="Nobody", date_of_birth=None
    )
    for identity in (RIGHT, wrong):
        with pytest.raises(ValidationError) as error:
            services.registration_report_sim_loss(
                registration=approved, actor=clerk, identity=identity, loss=""
            )
        assert "sim_loss" in error.value.error_dict
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.IDENTITY_CHECK_FAILED).exists()
