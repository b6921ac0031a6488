"""Reads: what a user may see, and look-ups through the blind index."""

from __future__ import annotations

from django.db.models import Count, Min, Q, QuerySet

from registrations import roles
from registrations.crypto import blind_index
from registrations.models import AuditEvent, Registration, Store, User
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
    *, document_type: str, document_number: str, queryset: QuerySet[Registration] | None = None
) -> list[Registration]:
    """Registrations whose customer holds this document.

    The blind index narrows the search to a few candidates (it is truncated on purpose, so
    several people share each value); decrypting each candidate confirms the match.
    """
    number = normalise_document_number(document_type, document_number)
    queryset = Registration.objects.all() if queryset is None else queryset
    candidates = queryset.filter(
        customer__document_type=document_type,
        customer__document_index=blind_index(document_type, number),
    ).select_related("customer", "store")
    return [
        registration
        for registration in candidates
        if normalise_document_number(document_type, registration.customer.document_number) == number
    ]


def person_active_sim_count(*, document_type: str, document_number: str, plan: str) -> int:
    """How many SIMs of this plan are held (pending, returned or approved) by this person."""
    # Only the document number of each candidate is decrypted, not the rest of its identity.
    active = Registration.objects.filter(status__in=Registration.ACTIVE_STATUSES, plan=plan).only(
        "pk", "store", "customer__document_type", "customer__document_number"
    )
    return len(
        registration_list_by_document(
            document_type=document_type, document_number=document_number, queryset=active
        )
    )


def counter_home_for(*, user: User) -> dict:
    """The counter's home: its stores' drafts to resume and records returned for correction."""
    mine = Registration.objects.filter(store__in=user.stores.all())
    by_status = dict(mine.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    recent = mine.select_related("store", "created_by").only(
        "reference", "status", "step", "updated_at", "store__code", "created_by__username"
    )
    return {
        "stores": list(user.stores.all()),
        "counts": by_status,
        "drafts": list(
            recent.filter(status=Registration.Status.DRAFT).order_by("-updated_at")[:10]
        ),
        "returned": list(
            recent.filter(status=Registration.Status.RETURNED).order_by("-updated_at")[:10]
        ),
    }


def review_home_for(*, user: User) -> dict:
    """The supervisor's home: how much waits for review in each supervised store."""
    stores = user.supervised_stores.annotate(
        pending=Count("registrations", filter=Q(registrations__status=Registration.Status.PENDING)),
        oldest=Min(
            "registrations__submitted_at",
            filter=Q(registrations__status=Registration.Status.PENDING),
        ),
    ).order_by("code")
    stores = list(stores)
    return {"stores": stores, "pending": sum(s.pending for s in stores)}


def audit_home() -> dict:
    last = AuditEvent.objects.order_by("-seq").values("seq", "at").first()
    return {"events": last["seq"] if last else 0, "last_at": last["at"] if last else None}
