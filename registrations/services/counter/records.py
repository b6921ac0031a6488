"""The registration a counter service works on: locked for the transaction, checked to be the
actor's to change, and who changed it kept for the four-eyes rule."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _

from registrations import roles
from registrations.models import Registration, RegistrationEditor, Store, User

# The statuses in which the counter may change a registration: the model's, by another name for
# the callers of services.
EDITABLE_STATUSES = Registration.EDITABLE_STATUSES


def require_counter_of(actor: User, store: Store) -> None:
    if not (roles.allows(actor, roles.RECORD) and actor.stores.filter(pk=store.pk).exists()):
        raise PermissionDenied("Only counter staff of the record's store may do this.")


def registration_locked(registration: Registration) -> Registration:
    """The row again, locked for this transaction (PostgreSQL; SQLite's write lock is held)."""
    return (
        Registration.objects.select_for_update(of=("self",))
        .select_related("store", "customer", "representative")
        .get(pk=registration.pk)
    )


def registration_editor_note(registration: Registration, actor: User | None) -> None:
    """Keep who entered or changed the record, for the four-eyes rule at decision time.

    In the caller's transaction: a save that rolls back leaves no trace here either. The first
    time is kept; a later save by the same person adds nothing (the row is unique).
    """
    if actor is None or actor.pk is None:
        return
    RegistrationEditor.objects.bulk_create(
        [RegistrationEditor(registration=registration, user=actor)], ignore_conflicts=True
    )


def registration_editable(registration: Registration, actor: User) -> Registration:
    """The row locked, if the actor works at its store and the counter may still change it."""
    registration = registration_locked(registration)
    require_counter_of(actor, registration.store)
    if registration.status not in Registration.EDITABLE_STATUSES:
        raise ValidationError(
            _("This registration was submitted and can no longer be changed at the counter."),
            code="not_editable",
        )
    return registration
