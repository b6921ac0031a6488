"""Reads: what a user may see, and look-ups through the blind index."""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterable

from django.db import connection
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from registrations import roles
from registrations.crypto import blind_index, pseudonym, sign_in_throttle_key
from registrations.models import (
    REFERENCE_ALPHABET,
    REFERENCE_LENGTH,
    AuditEvent,
    AuditJob,
    BreachRecord,
    DocumentCopy,
    Notification,
    PendingChange,
    Registration,
    RegistrationEditor,
    ScheduledRun,
    SignInThrottle,
    StatusChange,
    Store,
    StoreStatusCount,
    TerminationCause,
    User,
)
from registrations.policy import current_policy, retention_after
from registrations.validators import normalise_document_number


def store_list_for(*, user: User) -> QuerySet[Store]:
    """Stores whose records the user may see: where they work and what they supervise."""
    if not user.is_authenticated:
        return Store.objects.none()
    scope = Q()
    if roles.allows(user, roles.RECORD):
        scope |= Q(staff=user)
    if roles.allows(user, roles.REVIEW):
        scope |= Q(supervisors=user)
    if not scope:
        return Store.objects.none()
    return Store.objects.filter(scope).distinct()


def registration_list_for(*, user: User) -> QuerySet[Registration]:
    """Deny by default: registrations of the user's stores only; none for other roles."""
    return Registration.objects.filter(store__in=store_list_for(user=user))


def registration_list_by_document(
    *,
    document_type: str,
    document_number: str,
    queryset: QuerySet[Registration] | None = None,
    limit: int | None = None,
) -> list[Registration]:
    """Registrations whose customer holds this document (the first `limit` of them).

    The blind index narrows the search to a few candidates (it is truncated on purpose, so
    several people share each value); decrypting each candidate confirms the match. Past the
    limit no more candidates are read or decrypted.
    """
    number = normalise_document_number(document_type, document_number)
    queryset = Registration.objects.all() if queryset is None else queryset
    candidates = queryset.filter(
        customer__document_type=document_type,
        customer__document_index=blind_index(document_type, number),
    ).select_related("customer", "store")
    found = []
    for registration in candidates.iterator(chunk_size=100):
        if (
            normalise_document_number(document_type, registration.customer.document_number)
            == number
        ):
            found.append(registration)
            if limit is not None and len(found) >= limit:
                break
    return found


def store_status_counts(*, stores: QuerySet[Store]) -> dict[str, int]:
    """How many registrations of these stores are in each status, from the counters the
    services keep (StoreStatusCount): a few rows per store, however many registrations."""
    return dict(
        StoreStatusCount.objects.filter(store__in=stores)
        .values_list("status")
        .annotate(n=Sum("count"))
        .order_by()
        .values_list("status", "n")
    )


def store_status_counts_drift() -> list[tuple[int, str, int, int]]:
    """(store, status, kept, counted) wherever the counters differ from a COUNT of the rows;
    empty when they agree. Counts every registration: for checks, never for a page."""
    counted = {
        (store, status): n
        for store, status, n in Registration.objects.values_list("store_id", "status")
        .annotate(n=Count("*"))
        .order_by()
    }
    kept = {
        (store, status): n
        for store, status, n in StoreStatusCount.objects.values_list("store_id", "status", "count")
    }
    return sorted(
        (store, status, kept.get((store, status), 0), counted.get((store, status), 0))
        for store, status in counted.keys() | kept.keys()
        if kept.get((store, status), 0) != counted.get((store, status), 0)
    )


# The counter's lists ---------------------------------------------------------------------------

# Each list of the counter's records: the statuses it holds, and the column it is ordered by,
# newest first with the id breaking ties. The (store, status, submitted_at) index serves the
# submitted lists, the (store, decided_at) index the decided one; drafts have no submission time
# and are ordered by id within (store, status), the drafts of one store being few (stale ones are
# purged).
COUNTER_LISTS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "drafts": ((Registration.Status.DRAFT,), None),
    "returned": ((Registration.Status.RETURNED,), "submitted_at"),
    "pending": ((Registration.Status.PENDING,), "submitted_at"),
    "decided": (
        (
            Registration.Status.APPROVED,
            Registration.Status.REJECTED,
            Registration.Status.SUSPENDED,
            Registration.Status.TERMINATED,
        ),
        "decided_at",
    ),
}
# What a row shows. Of the customer only the two names are loaded (and decrypted), to be shown
# masked; the mobile number is the registration's own, not encrypted.
COUNTER_LIST_FIELDS = (
    "pk",
    "reference",
    "status",
    "furthest_step",
    "reason_code",
    "msisdn",
    "created_at",
    "submitted_at",
    "decided_at",
    "store__code",
    "store__name",
    "store__name_zh",
    "created_by__username",
    "customer__name_en",
    "customer__name_zh",
)


def counter_list_queryset(*, stores: Iterable[Store], list_name: str) -> QuerySet[Registration]:
    """One of the counter's lists over these stores, newest first, loading only what a row
    shows. With one store, the list reads its index in order and stops after the page."""
    statuses, column = COUNTER_LISTS[list_name]
    rows = Registration.objects.filter(store__in=list(stores))
    rows = (
        rows.filter(status=statuses[0]) if len(statuses) == 1 else rows.filter(status__in=statuses)
    )
    order = ("-pk",) if column is None else (f"-{column}", "-pk")
    return (
        rows.select_related("store", "created_by", "customer")
        .only(*COUNTER_LIST_FIELDS)
        .order_by(*order)
    )


def _counter_list_cursor(registration: Registration, column: str | None) -> str:
    """Where a page of a list ends: the ordering column (microseconds) and the id."""
    if column is None:
        return str(registration.pk)
    since_epoch = getattr(registration, column) - _EPOCH
    micros = (since_epoch.days * 86400 + since_epoch.seconds) * 1_000_000
    return f"{micros + since_epoch.microseconds}-{registration.pk}"


def _counter_list_position(
    cursor: str | None, column: str | None
) -> tuple[datetime.datetime | None, int] | None:
    if not cursor:
        return None
    if column is None:
        return (None, int(cursor)) if re.fullmatch(r"\d{1,19}", cursor) else None
    return _queue_position(cursor)


def _before_in_list(column: str | None, at: datetime.datetime | None, pk: int) -> Q:
    """Rows after this position in the list (older)."""
    if column is None:
        return Q(pk__lt=pk)
    # The first, redundant term is what the index can seek to: the page starts there instead
    # of after every newer row of the list.
    return Q(**{f"{column}__lte": at}) & (
        Q(**{f"{column}__lt": at}) | Q(**{column: at, "pk__lt": pk})
    )


def _after_in_list(column: str | None, at: datetime.datetime | None, pk: int) -> Q:
    """Rows before this position in the list (newer)."""
    if column is None:
        return Q(pk__gt=pk)
    return Q(**{f"{column}__gte": at}) & (
        Q(**{f"{column}__gt": at}) | Q(**{column: at, "pk__gt": pk})
    )


def counter_list_page(
    *,
    stores: Iterable[Store],
    list_name: str,
    older_than: str | None = None,
    newer_than: str | None = None,
    size: int = 25,
) -> dict:
    """One page of a counter list by keyset on (ordering column, id): no COUNT, no OFFSET, so
    a page costs the same at the millionth registration as at the first.

    `older_than` gives the page following that cursor, `newer_than` the page preceding it;
    "older" and "newer" are the cursors of the neighbouring pages, None where there is none. A
    cursor that does not parse gives the first page. Exactly the rows shown are loaded, so only
    their customers' names are decrypted; whether a neighbouring page exists is asked apart.
    """
    _statuses, column = COUNTER_LISTS[list_name]
    rows = counter_list_queryset(stores=stores, list_name=list_name)
    start = _counter_list_position(older_than, column)
    end = _counter_list_position(newer_than, column)
    page: list[Registration] = []
    if start is not None:
        page = list(rows.filter(_before_in_list(column, *start))[:size])
    elif end is not None:
        page = list(rows.filter(_after_in_list(column, *end)).reverse()[:size])[::-1]
    if not page:
        start = end = None
        page = list(rows[:size])
    if not page:
        return {"rows": [], "older": None, "newer": None}
    first, last = page[0], page[-1]
    first_at = getattr(first, column) if column else None
    last_at = getattr(last, column) if column else None
    plain = rows.order_by().values("pk")
    older = plain.filter(_before_in_list(column, last_at, last.pk))[:1].exists()
    newer = (start is not None or end is not None) and plain.filter(
        _after_in_list(column, first_at, first.pk)
    )[:1].exists()
    return {
        "rows": page,
        "older": _counter_list_cursor(last, column) if older else None,
        "newer": _counter_list_cursor(first, column) if newer else None,
    }


def registration_reference_normalise(text: str) -> str:
    """A reference as typed (any case, spaces, a missing or odd hyphen, full-width characters
    from a Chinese input method) in its printed form XXXXX-XXXXX, or "" when it cannot be one."""
    typed = unicodedata.normalize("NFKC", text or "")
    body = re.sub(r"[\s\-\u2010-\u2015\u2212_.]", "", typed).upper()
    if len(body) != REFERENCE_LENGTH or any(char not in REFERENCE_ALPHABET for char in body):
        return ""
    half = REFERENCE_LENGTH // 2
    return f"{body[:half]}-{body[half:]}"


def counter_list_search(*, stores: Iterable[Store], reference: str) -> list[Registration]:
    """The record of these stores with this reference, in any of the counter's lists; loaded
    as a row of a list is. Another store's record is not found."""
    return list(
        Registration.objects.filter(store__in=list(stores), reference=reference)
        .select_related("store", "created_by", "customer")
        .only(*COUNTER_LIST_FIELDS)
    )


def counter_list_name_of(registration: Registration) -> str:
    """Which of the counter's lists holds this record."""
    return next(
        name
        for name, (statuses, _column) in COUNTER_LISTS.items()
        if registration.status in statuses
    )


def store_status_counts_by_store(*, stores: Iterable[Store]) -> dict[int, dict[str, int]]:
    """The kept counts (StoreStatusCount) of each store apart: {store id: {status: count}}."""
    counts: dict[int, dict[str, int]] = {}
    for store_id, status, n in StoreStatusCount.objects.filter(store__in=list(stores)).values_list(
        "store_id", "status", "count"
    ):
        counts.setdefault(store_id, {})
        counts[store_id][status] = counts[store_id].get(status, 0) + n
    return counts


def counter_list_counts(counts: dict[str, int]) -> dict[str, int]:
    """How many records each counter list holds, from a store's counts by status."""
    return {
        name: sum(counts.get(status, 0) for status in statuses)
        for name, (statuses, _column) in COUNTER_LISTS.items()
    }


COUNTER_HOME_ROWS = 5


def counter_home_for(*, user: User, size: int = COUNTER_HOME_ROWS) -> dict:
    """The counter's home: the newest few drafts to resume and records returned for correction
    of its stores, and how many each list holds in each store (from the kept counts, no COUNT)."""
    stores = list(user.stores.all())
    by_store = store_status_counts_by_store(stores=stores)
    counts: dict[str, int] = {}
    for store_counts in by_store.values():
        for status, n in store_counts.items():
            counts[status] = counts.get(status, 0) + n
    return {
        "stores": stores,
        "counts": counts,
        "lists_by_store": {
            store.pk: counter_list_counts(by_store.get(store.pk, {})) for store in stores
        },
        "drafts": list(counter_list_queryset(stores=stores, list_name="drafts")[:size]),
        "returned": list(counter_list_queryset(stores=stores, list_name="returned")[:size]),
    }


def review_home_for(*, user: User) -> dict:
    """The supervisor's home: how much waits for review in each supervised store."""
    # Counts from the counters; the oldest submission of each store is the first entry of the
    # (store, status, submitted_at) index, however long the backlog.
    oldest = (
        Registration.objects.filter(store=OuterRef("pk"), status=Registration.Status.PENDING)
        .order_by("submitted_at")
        .values("submitted_at")[:1]
    )
    pending = StoreStatusCount.objects.filter(
        store=OuterRef("pk"), status=Registration.Status.PENDING
    ).values("count")[:1]
    stores = list(
        user.supervised_stores.annotate(
            oldest=Subquery(oldest), pending=Subquery(pending)
        ).order_by("code")
    )
    for store in stores:
        store.pending = store.pending or 0
    return {"stores": stores, "pending": sum(s.pending for s in stores)}


def audit_home() -> dict:
    last = AuditEvent.objects.order_by("-id").values("id", "at").first()
    return {"events": last["id"] if last else 0, "last_at": last["at"] if last else None}


# The counter flow -------------------------------------------------------------------------------


def registration_list_for_counter(*, user: User) -> QuerySet[Registration]:
    """Registrations of the stores where the user works at the counter."""
    if not roles.allows(user, roles.RECORD):
        return Registration.objects.none()
    return Registration.objects.filter(store__in=user.stores.all())


def registration_active_clashes(
    *, iccid: str = "", eid: str = "", msisdn: str = "", exclude_pk: int | None = None
) -> set[str]:
    """Which of these SIM identifiers an active registration (other than this one) holds."""
    active = Registration.objects.filter(status__in=Registration.ACTIVE_STATUSES)
    if exclude_pk is not None:
        active = active.exclude(pk=exclude_pk)
    return {
        field
        for field, value in (("iccid", iccid), ("eid", eid), ("msisdn", msisdn))
        if value and active.filter(**{field: value}).exists()
    }


def sim_replacement_asked_for(
    *, iccid: str = "", eid: str = "", exclude_registration_pk: int | None = None
) -> set[str]:
    """Which of these SIM identifiers a replacement waiting for review asks for (for another
    registration than this one): the SIM is promised until the replacement is decided."""
    asked = PendingChange.objects.filter(
        status=PendingChange.Status.PENDING, kind=PendingChange.Kind.REPLACEMENT
    )
    if exclude_registration_pk is not None:
        asked = asked.exclude(registration_id=exclude_registration_pk)
    return {
        field
        for field, value in (("iccid", iccid), ("eid", eid))
        if value and asked.filter(**{f"new_{field}": value}).exists()
    }


def person_active_sim_count(
    *, document_type: str, document_number: str, plan: str, exclude_pk: int | None = None
) -> int:
    """How many SIMs of this plan a person holds (pending, returned or approved).

    Only each candidate's document number is decrypted, not the rest of its identity.
    """
    active = Registration.objects.filter(status__in=Registration.ACTIVE_STATUSES, plan=plan)
    if exclude_pk is not None:
        active = active.exclude(pk=exclude_pk)
    active = active.only("pk", "store", "customer__document_type", "customer__document_number")
    return len(
        registration_list_by_document(
            document_type=document_type, document_number=document_number, queryset=active
        )
    )


def person_other_active_sim_count(*, registration: Registration) -> int:
    """Active SIMs of this registration's plan held by its customer, not counting this one."""
    customer = registration.customer
    if customer is None or not customer.document_number:
        return 0
    return person_active_sim_count(
        document_type=customer.document_type,
        document_number=customer.document_number,
        plan=registration.plan,
        exclude_pk=registration.pk,
    )


# What the consistency check reads of each other registration of the same document: the fields
# it compares, and the document number that confirms a blind-index match.
SAME_DOCUMENT_FIELDS = (
    "pk",
    "reference",
    "store",
    "customer__document_type",
    "customer__document_number",
    "customer__name_en",
    "customer__name_zh",
    "customer__date_of_birth",
)


def registration_list_same_document(
    *, document_type: str, document_number: str, exclude_pk: int | None = None
) -> list[Registration]:
    """Submitted registrations (any status but draft) of every store whose customer holds this
    document and whose identity data is kept, oldest first: what a new one must agree with."""
    submitted = (
        Registration.objects.exclude(status=Registration.Status.DRAFT)
        .filter(purged_at__isnull=True, customer__purged_at__isnull=True)
        .order_by("pk")
    )
    if exclude_pk is not None:
        submitted = submitted.exclude(pk=exclude_pk)
    return registration_list_by_document(
        document_type=document_type,
        document_number=document_number,
        queryset=submitted.select_related("customer").only(*SAME_DOCUMENT_FIELDS),
    )


def person_active_sim_counts(
    *, document_type: str, document_number: str, exclude_pk: int | None = None
) -> dict[str, int]:
    """{plan: active SIMs} a person holds, every plan listed (0 when none), in one look-up.

    Only each candidate's document number is decrypted, not the rest of its identity.
    """
    active = Registration.objects.filter(status__in=Registration.ACTIVE_STATUSES)
    if exclude_pk is not None:
        active = active.exclude(pk=exclude_pk)
    held = registration_list_by_document(
        document_type=document_type,
        document_number=document_number,
        queryset=active.only(
            "pk", "plan", "store", "customer__document_type", "customer__document_number"
        ),
    )
    counts = dict.fromkeys(Registration.Plan.values, 0)
    for registration in held:
        counts[registration.plan] = counts.get(registration.plan, 0) + 1
    return counts


def registration_change_waiting(*, registration: Registration) -> bool:
    """Whether a change asked for (update, termination, replacement) waits for a decision:
    one at a time, so that a supervisor decides each against the record as it stands."""
    return registration.changes.filter(status=PendingChange.Status.PENDING).exists()


def document_copy_list_on_file(*, registration: Registration) -> dict[str, DocumentCopy]:
    """The current copy of each kind for a registration (the latest copy in force wins)."""
    copies = document_copy_list_in_force(registration=registration)
    return {copy.kind: copy for copy in copies}


def document_copy_can_view(*, user: User, document: DocumentCopy) -> bool:
    """Supervisors of the store (reveal role); counter staff of the store while it is editable."""
    if document.purged_at is not None:
        return False
    return document_copy_can_view_of(user=user, registration=document.registration)


def drafts_stale(*, now: datetime.datetime | None = None) -> QuerySet[Registration]:
    """Drafts nobody has touched for longer than the policy keeps a draft."""
    now = now or timezone.now()
    cutoff = now - current_policy().draft_max_age
    return Registration.objects.filter(status=Registration.Status.DRAFT, updated_at__lt=cutoff)


def document_stored_names() -> set[str]:
    return set(DocumentCopy.objects.values_list("stored_name", flat=True))


# The audit log (compliance admins) ------------------------------------------------------------


def audit_event_list(
    *,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    actor: str = "",
    action: str = "",
    store_code: str = "",
    reference: str = "",
) -> QuerySet[AuditEvent]:
    """Audit events matching the filters: `since` inclusive, `until` exclusive, exact matches.

    Each filter can use an index of AuditEvent (at, actor+at, action+at, store_code+at,
    registration_reference+at).
    """
    events = AuditEvent.objects.all()
    if since is not None:
        events = events.filter(at__gte=since)
    if until is not None:
        events = events.filter(at__lt=until)
    if actor:
        # The actor's id is indexed; failed sign-ins under an unknown name have only the name.
        actor_id = User.objects.filter(username=actor).values_list("pk", flat=True).first()
        events = (
            events.filter(actor_id=actor_id)
            if actor_id is not None
            else events.filter(actor_username=actor)
        )
    if action:
        events = events.filter(action=action)
    if store_code:
        events = events.filter(store_code=store_code)
    if reference:
        events = events.filter(registration_reference=reference)
    return events


def audit_event_page(
    *,
    events: QuerySet[AuditEvent],
    before: int | None = None,
    after: int | None = None,
    size: int = 50,
) -> dict:
    """One page of events, newest first, by keyset on the event number, `id` (no COUNT over
    millions of rows).

    `before` gives the page of events older than that number, `after` the page newer than it;
    "older" and "newer" are the cursors of the neighbouring pages, None where there is none.
    """
    if after is not None:
        rows = list(events.filter(id__gt=after).order_by("id")[: size + 1])
        page = rows[:size][::-1]
        newer = page[0].id if len(rows) > size else None
        oldest_shown = page[-1].id if page else after + 1
        older = oldest_shown if events.filter(id__lt=oldest_shown).exists() else None
    else:
        older_events = events if before is None else events.filter(id__lt=before)
        rows = list(older_events.order_by("-id")[: size + 1])
        page = rows[:size]
        older = page[-1].id if len(rows) > size else None
        newest_shown = page[0].id if page else (before or 0) - 1
        newer = (
            newest_shown
            if before is not None and events.filter(id__gt=newest_shown).exists()
            else None
        )
    return {"events": page, "older": older, "newer": newer}


def audit_job_list_for(*, user: User, limit: int = 10) -> list[AuditJob]:
    """The user's most recent verifications and exports, newest first."""
    return list(AuditJob.objects.filter(requested_by=user).order_by("-created_at", "-pk")[:limit])


def audit_job_for(*, user: User, pk: int) -> AuditJob | None:
    """One of the user's own jobs; None for anyone else's: an export is for whoever asked."""
    return AuditJob.objects.filter(requested_by=user, pk=pk).first()


def audit_job_exports_expired(*, now: datetime.datetime) -> QuerySet[AuditJob]:
    """Finished exports whose file is past its time and still stored."""
    return AuditJob.objects.filter(
        kind=AuditJob.Kind.EXPORT,
        state=AuditJob.State.FINISHED,
        expires_at__lte=now,
    ).exclude(stored_name="")


def audit_job_stored_names() -> set[str]:
    return set(AuditJob.objects.exclude(stored_name="").values_list("stored_name", flat=True))


# Review ------------------------------------------------------------------------------------------

QUEUE_FIELDS = (
    "pk",
    "reference",
    "status",
    "channel",
    "sim_kind",
    "plan",
    "submitted_at",
    "discrepancy_fields",
    "created_by_id",
    "submitted_by_id",
    "store__code",
    "store__name",
    "store__name_zh",
    "submitted_by__username",
)


def review_queue_for(
    *,
    user: User,
    store: Store | None = None,
    older_than_hours: int | None = None,
    channel: str = "",
    sim_kind: str = "",
) -> QuerySet[Registration]:
    """Pending submissions of the supervised stores, oldest first; no identity field loaded."""
    queue = Registration.objects.filter(
        status=Registration.Status.PENDING, store__in=user.supervised_stores.all()
    )
    if store is not None:
        queue = queue.filter(store=store)
    if older_than_hours:
        queue = queue.filter(
            submitted_at__lte=timezone.now() - datetime.timedelta(hours=older_than_hours)
        )
    if channel:
        queue = queue.filter(channel=channel)
    if sim_kind:
        queue = queue.filter(sim_kind=sim_kind)
    return (
        queue.select_related("store", "submitted_by")
        .only(*QUEUE_FIELDS)
        .order_by("submitted_at", "pk")
    )


QUEUE_COUNT_LIMIT = 1000
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_CURSOR = re.compile(r"(\d{1,18})-(\d{1,19})")


def review_queue_cursor(registration: Registration) -> str:
    """Where a page of the queue ends: the submission time (microseconds) and the id."""
    since_epoch = registration.submitted_at - _EPOCH
    micros = (since_epoch.days * 86400 + since_epoch.seconds) * 1_000_000
    return f"{micros + since_epoch.microseconds}-{registration.pk}"


def _queue_position(cursor: str | None) -> tuple[datetime.datetime, int] | None:
    match = _CURSOR.fullmatch(cursor or "")
    if match is None:
        return None
    micros, pk = int(match[1]), int(match[2])
    try:
        return _EPOCH + datetime.timedelta(microseconds=micros), pk
    except OverflowError:
        return None


def review_queue_page(
    *,
    queue: QuerySet[Registration],
    after: str | None = None,
    before: str | None = None,
    size: int = 25,
) -> dict:
    """One page of the queue, oldest first, by keyset on (submitted_at, id): the (store,
    status, submitted_at) index reads only the page, however long the backlog.

    `after` gives the page following that cursor, `before` the page preceding it; "next" and
    "previous" are the cursors of the neighbouring pages, None where there is none. A cursor
    that does not parse gives the first page.
    """
    start, end = _queue_position(after), _queue_position(before)
    if start is not None:
        at, pk = start
        later = queue.filter(Q(submitted_at__gt=at) | Q(submitted_at=at, pk__gt=pk))
        rows = list(later[: size + 1])
        page = rows[:size]
        following = review_queue_cursor(page[-1]) if len(rows) > size else None
        first = page[0] if page else None
        earlier = (
            queue.filter(
                Q(submitted_at__lt=first.submitted_at)
                | Q(submitted_at=first.submitted_at, pk__lt=first.pk)
            ).exists()
            if first is not None
            else False
        )
        previous = review_queue_cursor(first) if earlier else None
        return {"rows": page, "next": following, "previous": previous}
    if end is not None:
        at, pk = end
        earlier = queue.filter(Q(submitted_at__lt=at) | Q(submitted_at=at, pk__lt=pk))
        rows = list(earlier.order_by("-submitted_at", "-pk")[: size + 1])
        page = rows[:size][::-1]
        if page:
            previous = review_queue_cursor(page[0]) if len(rows) > size else None
            return {"rows": page, "next": review_queue_cursor(page[-1]), "previous": previous}
    rows = list(queue[: size + 1])
    page = rows[:size]
    following = review_queue_cursor(page[-1]) if len(rows) > size else None
    return {"rows": page, "next": following, "previous": None}


def review_queue_count(
    *, user: User, store: Store | None = None, queue: QuerySet[Registration] | None = None
) -> tuple[int, bool]:
    """How many submissions wait: (count, exact). Without filters, from the counters of the
    supervised stores (or of `store`). A filtered `queue` is counted up to QUEUE_COUNT_LIMIT
    rows only; past it the count is that limit and not exact ("more than")."""
    if queue is None:
        stores = user.supervised_stores.all()
        if store is not None:
            stores = stores.filter(pk=store.pk)
        pending = store_status_counts(stores=stores).get(Registration.Status.PENDING, 0)
        return pending, True
    return count_up_to_limit(queue)


def count_up_to_limit(rows: QuerySet) -> tuple[int, bool]:
    """(count, exact) of a queue, counting no further than QUEUE_COUNT_LIMIT rows: past it the
    count is that limit and not exact ("more than")."""
    seen = rows.order_by().values("pk")[: QUEUE_COUNT_LIMIT + 1].count()
    return min(seen, QUEUE_COUNT_LIMIT), seen <= QUEUE_COUNT_LIMIT


def change_queue_for(
    *, user: User, store: Store | None = None, older_than_hours: int | None = None
) -> QuerySet[PendingChange]:
    """Pending updates of information and terminations of the supervised stores, oldest first."""
    changes = PendingChange.objects.filter(
        status=PendingChange.Status.PENDING,
        registration__store__in=user.supervised_stores.all(),
    )
    if store is not None:
        changes = changes.filter(registration__store=store)
    if older_than_hours:
        changes = changes.filter(
            requested_at__lte=timezone.now() - datetime.timedelta(hours=older_than_hours)
        )
    return (
        changes.select_related("registration__store", "requested_by")
        .only(
            "pk",
            "kind",
            "changed_fields",
            "requested_at",
            "requested_by__username",
            "registration__reference",
            "registration__store__code",
            "registration__store__name",
            "registration__store__name_zh",
        )
        .order_by("requested_at", "pk")
    )


def registration_list_for_review(*, user: User) -> QuerySet[Registration]:
    """Every registration of the stores the user supervises (none for other roles)."""
    if not roles.allows(user, roles.REVIEW):
        return Registration.objects.none()
    return Registration.objects.filter(store__in=user.supervised_stores.all())


def registration_references_for_review(*, user: User, references: Iterable[str]) -> set[str]:
    """Which of these references the user may open on the review pages (their stores')."""
    references = list(references)
    if not references:
        return set()
    return set(
        registration_list_for_review(user=user)
        .filter(reference__in=references)
        .values_list("reference", flat=True)
    )


def registration_decision_barred(*, user: User, registration: Registration) -> bool:
    """Four-eyes rule: whether the user entered, changed or submitted the record at any point.

    Creator and last submitter are on the row; everyone else who saved a step, uploaded a copy,
    submitted an earlier round or asked for a change is in RegistrationEditor.
    """
    if user.pk in {registration.created_by_id, registration.submitted_by_id}:
        return True
    return RegistrationEditor.objects.filter(registration=registration, user=user).exists()


def pending_change_decision_barred(
    *, user: User, change: PendingChange, registration_barred: bool | None = None
) -> bool:
    """Four-eyes rule for an update or a termination: not the requester, nor anyone who
    entered or changed the record it applies to. `registration_barred`, when the caller
    already knows it for this user and record, saves the look-up (one per record page)."""
    if change.requested_by_id == user.pk:
        return True
    if registration_barred is None:
        registration_barred = registration_decision_barred(
            user=user, registration=change.registration
        )
    return registration_barred


def decisions_since_last_look(*, user: User, limit: int = 20) -> list[Registration]:
    """The counter's own submissions decided since the user last marked them seen."""
    decided = Registration.objects.filter(
        submitted_by=user, status__in=Registration.DECIDED_STATUSES, decided_at__isnull=False
    )
    if user.decisions_seen_at is not None:
        decided = decided.filter(decided_at__gt=user.decisions_seen_at)
    return list(
        decided.select_related("store", "reviewer")
        .only(
            "reference", "status", "reason_code", "decided_at", "store__code", "reviewer__username"
        )
        .order_by("-decided_at", "-pk")[:limit]
    )


def change_decisions_since_last_look(*, user: User, limit: int = 20) -> list[PendingChange]:
    """Updates, terminations and replacements the user asked for (at any store's record),
    decided since they last marked them seen."""
    decided = PendingChange.objects.filter(requested_by=user, decided_at__isnull=False).exclude(
        status=PendingChange.Status.PENDING
    )
    if user.decisions_seen_at is not None:
        decided = decided.filter(decided_at__gt=user.decisions_seen_at)
    return list(
        decided.select_related("registration")
        .only(
            "kind",
            "status",
            "reason_code",
            "decided_at",
            "registration__reference",
            "registration__store_id",
        )
        .order_by("-decided_at", "-pk")[:limit]
    )


DECISIONS_SHOWN = 20


def counter_decisions_since_last_look(*, user: User, limit: int = DECISIONS_SHOWN) -> dict:
    """Decisions on the user's submissions and on the changes they asked for, since they last
    marked them seen: one list, newest first, the `limit` newest only. A counter back from a
    holiday would otherwise get a home page as long as the backlog; "more" says that older
    ones were left out (the decided list has them)."""
    registrations = decisions_since_last_look(user=user, limit=limit + 1)
    changes = change_decisions_since_last_look(user=user, limit=limit + 1)
    merged = sorted(
        [*registrations, *changes],
        key=lambda item: (item.decided_at, isinstance(item, PendingChange), item.pk),
        reverse=True,
    )
    shown = merged[:limit]
    return {
        "items": shown,
        "registrations": [item for item in shown if isinstance(item, Registration)],
        "changes": [item for item in shown if isinstance(item, PendingChange)],
        "more": len(merged) > limit,
        "limit": limit,
    }


def review_dashboard_for(*, user: User, days: int = 30) -> dict:
    """Counts by status, submissions per day, decisions by reason, median time to decision."""
    stores = user.supervised_stores.all()
    since = timezone.now() - datetime.timedelta(days=days)
    by_status = store_status_counts(stores=stores)
    history = StatusChange.objects.filter(store__in=stores, at__gte=since)
    per_day = dict(
        history.filter(to_status=Registration.Status.PENDING)
        .annotate(day=TruncDate("at", tzinfo=timezone.get_current_timezone()))
        .values_list("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    today = timezone.localdate()
    daily = [(today - datetime.timedelta(days=offset), 0) for offset in range(days - 1, -1, -1)]
    daily = [(day, per_day.get(day, 0)) for day, _ in daily]
    by_reason = list(
        history.filter(to_status__in=[Registration.Status.REJECTED, Registration.Status.RETURNED])
        .values_list("reason_code")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("reason_code", "n")
    )
    median, decided = decision_time_median(stores=stores, since=since)
    return {
        "by_status": by_status,
        "daily": daily,
        "by_reason": by_reason,
        "median_seconds": median,
        "decided": decided,
        "days": days,
    }


class _Median(Aggregate):
    """PostgreSQL's percentile_cont(0.5): the median, interpolated as the page always showed."""

    function = "percentile_cont"
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = DurationField()


def decision_time_median(
    *, stores: QuerySet[Store], since: datetime.datetime
) -> tuple[float | None, int]:
    """Median seconds from submission to decision of the registrations decided since `since`,
    and how many there were. Only that window is read, through the (store, decided_at) index;
    PostgreSQL computes the median itself, other databases get the window's durations."""
    decided = Registration.objects.filter(
        store__in=stores, decided_at__gte=since, submitted_at__isnull=False
    ).filter(decided_at__gte=F("submitted_at"))
    if connection.vendor == "postgresql":
        waited = ExpressionWrapper(
            F("decided_at") - F("submitted_at"), output_field=DurationField()
        )
        row = decided.aggregate(median=_Median(waited), n=Count("pk"))
        median = row["median"].total_seconds() if row["median"] is not None else None
        return median, row["n"]
    durations = sorted(
        (decided_at - submitted_at).total_seconds()
        for submitted_at, decided_at in decided.values_list("submitted_at", "decided_at")
    )
    if not durations:
        return None, 0
    mid = len(durations) // 2
    median = durations[mid] if len(durations) % 2 else (durations[mid - 1] + durations[mid]) / 2
    return median, len(durations)


# Breach records ----------------------------------------------------------------------------------


def breach_list_for(*, user: User) -> QuerySet[BreachRecord]:
    """Breach records, newest found first, for those whose role records them."""
    if not roles.allows(user, roles.RECORD_BREACH):
        return BreachRecord.objects.none()
    return BreachRecord.objects.select_related("recorded_by").order_by("-found_at", "-id")


def breach_for(*, user: User, pk: int) -> BreachRecord | None:
    return breach_list_for(user=user).filter(pk=pk).first()


# Retention ---------------------------------------------------------------------------------------


def registrations_past_retention(*, now: datetime.datetime) -> QuerySet[Registration]:
    """Registrations kept longer than the policy requires, not yet purged: terminated ones
    counted from the termination, for the period of its cause (the subscriber's death has its
    own), rejected ones (never a registration) from the rejection."""
    policy = current_policy()
    keep_until = now - retention_after(policy, cause="")
    death_keep_until = now - retention_after(policy, cause=TerminationCause.DEATH)
    terminated = Registration.Status.TERMINATED
    return Registration.objects.filter(
        Q(status=terminated, terminated_at__lt=death_keep_until)
        & Q(termination_cause=TerminationCause.DEATH)
        | Q(status=terminated, terminated_at__lt=keep_until)
        & ~Q(termination_cause=TerminationCause.DEATH)
        | Q(status=Registration.Status.REJECTED, decided_at__lt=keep_until),
        purged_at__isnull=True,
    )


# Sign-in ---------------------------------------------------------------------------------------


def sign_in_name(*, username: str) -> tuple[User | None, str]:
    """The user a typed name belongs to, and the name the audit log may hold for it.

    A name that belongs to nobody is often a password typed into the wrong box: the log holds
    a keyed pseudonym of it instead, which still lets repeated attempts be counted.
    """
    user = User.objects.filter(username=username).first()
    return user, (username if user is not None else pseudonym(username))


def sign_in_keys(*, username: str, ip: str | None) -> tuple[str, str]:
    """The keys of an attempt's two counters: per user name, per user name and client address."""
    return (
        sign_in_throttle_key("name", username),
        sign_in_throttle_key("address", username, ip or ""),
    )


def sign_in_locked_until(
    *, username: str, now: datetime.datetime, ip: str | None = None
) -> datetime.datetime | None:
    """When the sign-in counters let this user name try again from this address, if they hold
    it back now (registrations.services.sign_in); None when an attempt would be counted."""
    from django.conf import settings

    name_key, address_key = sign_in_keys(username=username, ip=ip)
    rows = {row.key: row for row in SignInThrottle.objects.filter(key__in=[name_key, address_key])}
    by_name, by_address = rows.get(name_key), rows.get(address_key)
    counters = [by_address]
    if by_address is None or by_address.trusted_until is None or by_address.trusted_until <= now:
        counters.append(by_name)
    ends = [
        row.window_ends
        for row in counters
        if row is not None
        and row.window_ends is not None
        and now < row.window_ends
        and row.attempts >= settings.SIGN_IN_MAX_FAILURES
    ]
    return max(ends, default=None)


def sign_in_counters_idle(*, now: datetime.datetime) -> QuerySet[SignInThrottle]:
    """Sign-in counters that hold nothing back any more: no window open for longer than the
    longest one (so the back-off would start again anyway), and no address trusted."""
    from django.conf import settings

    longest = datetime.timedelta(hours=settings.SIGN_IN_LOCK_MAX_HOURS)
    return SignInThrottle.objects.filter(
        Q(window_ends__lt=now - longest) | Q(window_ends__isnull=True)
    ).exclude(trusted_until__gt=now)


# The counter: copies in force, Find --------------------------------------------------------------


def document_copy_list_in_force(*, registration: Registration) -> QuerySet[DocumentCopy]:
    """The registration's copies, oldest first, without those not (or no longer) in force.

    Purged copies are left out, and so is the renewed copy of an update of information until a
    supervisor approves the update: while pending, or once rejected, it is not the customer's
    document. An approved renewed copy is the newest identity copy, so it becomes the current one.
    """
    not_approved = (
        PendingChange.objects.filter(registration=registration, new_document_copy__isnull=False)
        .exclude(status=PendingChange.Status.APPROVED)
        .values("new_document_copy")
    )
    return (
        registration.documents.filter(purged_at__isnull=True)
        .exclude(pk__in=not_approved)
        .order_by("uploaded_at", "pk")
    )


def document_copy_can_view_of(*, user: User, registration: Registration) -> bool:
    """Whether the user may open this registration's (unpurged) copies.

    Supervisors of the store (reveal role) may; counter staff of the store while the record is
    editable. It depends on the user and the registration only: one answer serves every copy.
    """
    if (
        roles.allows(user, roles.REVEAL)
        and user.supervised_stores.filter(pk=registration.store_id).exists()
    ):
        return True
    return (
        roles.allows(user, roles.RECORD)
        and registration.status in Registration.EDITABLE_STATUSES
        and user.stores.filter(pk=registration.store_id).exists()
    )


# What Find lists. Of a blind-index candidate only the document number is loaded (and decrypted):
# the truncated index matches other people too, whose identity the counter has no need to see.
FIND_FIELDS = (
    "pk",
    "reference",
    "status",
    "plan",
    "sim_kind",
    "msisdn",
    "submitted_at",
    "store__code",
    "store__name",
    "store__name_zh",
)
FIND_CANDIDATE_FIELDS = (*FIND_FIELDS, "customer__document_type", "customer__document_number")
# Find looks at most this many records for one key: a document holds a few SIMs per plan.
FIND_LIMIT = 50


def registration_list_for_service(*, user: User) -> QuerySet[Registration]:
    """Registrations any counter of the operator may serve: every store's, drafts excepted.

    A customer may walk into any store for an update, a termination, a lost SIM or a
    replacement. Browsing lists stay scoped to one's stores (registration_list_for_counter);
    this is for a look-up by a key the customer gives, and for the record found by it.
    """
    if not roles.allows(user, roles.RECORD):
        return Registration.objects.none()
    return Registration.objects.exclude(status=Registration.Status.DRAFT)


def registration_find_at_counter(
    *,
    user: User,
    msisdn: str = "",
    document_type: str = "",
    document_number: str = "",
    iccid: str = "",
    eid: str = "",
    reference: str = "",
) -> list[Registration]:
    """Registrations of any store and any status but draft, by one key: mobile number,
    document (blind index), ICCID, EID or reference; oldest first, FIND_LIMIT + 1 at most (a
    company on service plans may hold any number: one more than are shown says so).

    Only what the list of results shows is loaded, and no identity field but the document
    number of each candidate, which confirms a blind-index match. Each result says whether a
    change waits for a decision (`change_pending`), which the actions it offers depend on.
    """
    found = (
        registration_list_for_service(user=user)
        .annotate(
            change_pending=Exists(
                PendingChange.objects.filter(
                    registration=OuterRef("pk"), status=PendingChange.Status.PENDING
                )
            )
        )
        .select_related("store")
        .order_by("pk")
    )
    keys = {"msisdn": msisdn, "iccid": iccid, "eid": eid, "reference": reference}
    for field, value in keys.items():
        if value:
            return list(found.filter(**{field: value}).only(*FIND_FIELDS)[: FIND_LIMIT + 1])
    if document_type and document_number:
        return registration_list_by_document(
            document_type=document_type,
            document_number=document_number,
            queryset=found.select_related("customer").only(*FIND_CANDIDATE_FIELDS),
            limit=FIND_LIMIT + 1,
        )
    return []


# What the counter may ask for on a registration it serves, by status: an update only of an
# approved one; a termination or a replacement SIM of an approved or suspended one; a loss
# report of an approved one. A change waiting for a decision holds back all but the loss report:
# a lost SIM cannot wait.
SERVICE_ACTIONS = {
    Registration.Status.APPROVED: ("update", "terminate", "loss", "replace"),
    Registration.Status.SUSPENDED: ("replace", "terminate"),
}


def registration_service_actions(*, registration: Registration, change_pending: bool) -> list[str]:
    """The counter's actions open on this registration now (names of counter-<action> pages)."""
    actions = SERVICE_ACTIONS.get(registration.status, ())
    if change_pending:
        return [action for action in actions if action == "loss"]
    return list(actions)


def registration_change_pending(*, registration: Registration) -> PendingChange | None:
    """The change waiting for a decision on this registration, if any (none of its values)."""
    return (
        registration.changes.filter(status=PendingChange.Status.PENDING)
        .select_related("requested_by", "requested_at_store")
        .only(
            "pk",
            "kind",
            "status",
            "changed_fields",
            "new_sim_kind",
            "new_iccid",
            "new_eid",
            "requested_at",
            "registration_id",
            "requested_by__username",
            "requested_at_store__code",
            "requested_at_store__name",
            "requested_at_store__name_zh",
        )
        .first()
    )


# Second factor and the staff a supervisor looks after -------------------------------------------


def second_factor_device_for(*, user: User) -> TOTPDevice | None:
    """The user's confirmed authenticator (TOTP device), or None when not enrolled."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()


def second_factor_pending_device_for(*, user: User, since: datetime.datetime) -> TOTPDevice | None:
    """The authenticator being enrolled (shown as a QR code, not yet confirmed), if made after
    `since`."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=False, created_at__gte=since)
        .order_by("-pk")
        .first()
    )


def second_factor_enrolled_user_ids(*, users: list[User]) -> set[int]:
    """Which of these users have an authenticator in force: one query for a whole list."""
    return set(
        TOTPDevice.objects.filter(user__in=users, confirmed=True).values_list("user_id", flat=True)
    )


def second_factor_recovery_codes_left(*, user: User) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


def staff_list_for_supervisor(*, user: User) -> QuerySet[User]:
    """Counter staff working at a store the user supervises, whose password and second factor
    the user may reset.

    Only plain counter staff: nobody who also holds another role or can open the admin, since
    resetting their sign-in would hand over more than the counter.
    """
    from django.contrib.auth.models import Permission
    from django.db.models import Exists, OuterRef

    if not roles.allows(user, roles.REVIEW):
        return User.objects.none()
    app_label, codename = roles.RECORD.split(".")
    other_permissions = Permission.objects.filter(
        Q(group__user=OuterRef("pk")) | Q(user=OuterRef("pk"))
    ).exclude(content_type__app_label=app_label, codename=codename)
    counter = User.objects.filter(
        groups__permissions__content_type__app_label=app_label,
        groups__permissions__codename=codename,
    )
    return (
        User.objects.filter(
            pk__in=counter.values("pk"),
            stores__in=user.supervised_stores.all(),
            is_active=True,
            is_superuser=False,
            is_staff=False,
        )
        .exclude(pk=user.pk)
        .exclude(Exists(other_permissions))
        .distinct()
    )


def staff_can_manage(*, actor: User, user: User) -> bool:
    """Whether `actor` may reset `user`'s password and second factor: a superuser anyone's, a
    supervisor those of the counter staff of their stores."""
    if not actor.is_authenticated or not actor.is_active:
        return False
    if actor.is_superuser:
        return True
    return staff_list_for_supervisor(user=actor).filter(pk=user.pk).exists()


def worker_heartbeat_last() -> datetime.datetime | None:
    """When a job worker last said it was alive (services.jobs), or None if none ever did."""
    heartbeat = ScheduledRun.objects.filter(name=ScheduledRun.WORKER_HEARTBEAT)
    return heartbeat.values_list("due_at", flat=True).first()


def notification_list_undelivered_for(*, user: User) -> QuerySet[Notification]:
    """Messages to customers of the supervised stores that were given up on, or failed at least
    once and are still being retried: newest first."""
    State = Notification.State
    return (
        Notification.objects.filter(store__in=user.supervised_stores.all())
        .filter(Q(state=State.FAILED) | Q(state=State.QUEUED, attempts__gt=0))
        .select_related("registration")
        .order_by("-created_at", "-pk")
    )


def notification_failed_count_for(*, user: User) -> tuple[int, bool]:
    """(count, exact) of the supervised stores' messages given up on, up to QUEUE_COUNT_LIMIT."""
    return count_up_to_limit(
        Notification.objects.filter(
            store__in=user.supervised_stores.all(), state=Notification.State.FAILED
        )
    )


# The subscriber's own report: their registrations across all stores and who accessed them.
SUBJECT_REPORT_REGISTRATIONS = 100
SUBJECT_REPORT_EVENTS = 500


def subject_report_registrations(*, document_type: str, document_number: str) -> list[Registration]:
    """Every registration of the operator whose customer holds this document, drafts and purged
    records excepted, oldest first: SUBJECT_REPORT_REGISTRATIONS + 1 at most, so that the page
    can say when there are more."""
    return registration_list_by_document(
        document_type=document_type,
        document_number=document_number,
        queryset=Registration.objects.exclude(status=Registration.Status.DRAFT)
        .filter(purged_at__isnull=True)
        .order_by("created_at", "pk"),
        limit=SUBJECT_REPORT_REGISTRATIONS + 1,
    )


def subject_report_changes(*, registrations: Iterable[Registration]) -> list[PendingChange]:
    """The changes asked for on these registrations, waiting or decided, oldest first."""
    return list(
        PendingChange.objects.filter(registration__in=list(registrations))
        .select_related("requested_at_store")
        .order_by("requested_at", "pk")
    )


def subject_report_events(
    *, reference: str, limit: int = SUBJECT_REPORT_EVENTS
) -> list[AuditEvent]:
    """The newest `limit` + 1 audit events on one record, newest first, read on the record's
    index (audit_record_idx): a record with a long history costs one bounded query."""
    return list(
        AuditEvent.objects.filter(registration_reference=reference)
        .only("id", "at", "actor_id", "action", "store_code", "reason", "fields", "details")
        .order_by("-at", "-id")[: limit + 1]
    )


def user_roles_and_stores(*, user_ids: Iterable[int]) -> dict[int, tuple[list[str], set[str]]]:
    """The role groups each of these users holds now and the codes of the stores they work at
    or supervise, by user id: what a page names instead of a person."""
    ids = set(user_ids)
    held: dict[int, tuple[list[str], set[str]]] = {pk: ([], set()) for pk in ids}
    memberships = User.groups.through.objects.filter(user_id__in=ids).order_by("group__name")
    for user_id, name in memberships.values_list("user_id", "group__name"):
        held[user_id][0].append(name)
    for through in (User.stores.through, User.supervised_stores.through):
        for user_id, code in through.objects.filter(user_id__in=ids).values_list(
            "user_id", "store__code"
        ):
            held[user_id][1].add(code)
    return held
