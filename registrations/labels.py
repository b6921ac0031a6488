"""What field names and reason codes are called on screen.

Field names reach a page from three places: an audit event's list of the fields it concerns, a
pending change's list of the fields it changes, and a service's error about a field that is on
another step of the counter flow. Reason codes come from decisions, reveals, document views and
the reasons the app records on its own. The labels of choices (statuses, actions, kinds) are
looked up once per language for a whole page: a list of 50 rows would otherwise translate every
label of a choice on every row.

This module imports models only: forms and views import it, not the other way round.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.utils.text import capfirst
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _

from registrations.models import (
    AuditEvent,
    DocumentCopy,
    DocumentReason,
    Person,
    ReasonCode,
    Registration,
    RevealReason,
    Store,
    User,
)

if TYPE_CHECKING:
    from django.forms import Form

# Where a field name recorded in an audit event is looked up for its label, in this order.
RECORDED_MODELS = (Person, Registration, User, Store)
# Names whose model label does not say what the app calls them.
RENAMED_FIELDS = {"groups": gettext_lazy("Roles")}
# Events whose field names are the kinds of document copy concerned.
DOCUMENT_ACTIONS = (AuditEvent.Action.DOCUMENT_UPLOADED, AuditEvent.Action.DOCUMENT_VIEWED)
# Reasons the app records on its own rather than picked from a list.
RECORDED_REASONS = {
    "locked": gettext_lazy("User name locked"),
    "stale": gettext_lazy("Draft left unfinished too long"),
}


def choice_labels(choices: type[models.Choices]) -> dict[str, str]:
    """{value: label} of the choices in the active language."""
    return _choice_labels(choices, get_language())


@functools.cache
def _choice_labels(choices: type[models.Choices], language: str | None) -> dict[str, str]:
    # `language` is the key: the labels are translated into the active one, which it names.
    return {value: str(label) for value, label in choices.choices}


def field_label(
    name: str,
    *,
    action: str = "",
    change: bool = False,
    forms: Sequence[type[Form]] = (),
) -> str:
    """What a field name is called on screen.

    - By default, a field of the records the app keeps, as a record page or an audit event
      names it: the name the app or the first of RECORDED_MODELS gives it; in an event of
      `action` about document copies, the kind of copy.
    - With `change`, a field of a pending change: a termination changes the "status".
    - With `forms`, a field of one of these forms (a service's error about a field of another
      step): the label the form shows next to it.

    A name none of them knows is shown with its underscores as spaces.
    """
    if forms:
        for form_class in forms:
            if name in form_class.base_fields:
                return str(form_class.base_fields[name].label)
        return _readable(name)
    if change:
        if name == "status":
            return capfirst(_("termination"))
        return _model_label(name, (Person,)) or _readable(name)
    return _recorded_field_label(name, action in DOCUMENT_ACTIONS, get_language())


# Bounded: the names are those the services record, but an old event may hold any.
@functools.lru_cache(maxsize=1024)
def _recorded_field_label(name: str, document_action: bool, language: str | None) -> str:
    if name in RENAMED_FIELDS:
        return str(RENAMED_FIELDS[name])
    if document_action and name in DocumentCopy.Kind.values:
        return str(DocumentCopy.Kind(name).label)
    return _model_label(name, RECORDED_MODELS) or _readable(name)


def _model_label(name: str, labelled: Sequence[type[models.Model]]) -> str:
    for model in labelled:
        try:
            verbose_name = getattr(model._meta.get_field(name), "verbose_name", None)
        except FieldDoesNotExist:
            continue
        if verbose_name:
            return capfirst(str(verbose_name))
    return ""


def _readable(name: str) -> str:
    return capfirst(name.replace("_", " ").strip())


def reason_label(reason: str, *, action: str = "") -> str:
    """What a reason code means, for the event of `action` that recorded it if known; free text
    is shown as it is."""
    if not reason:
        return ""
    return _reason_labels(action == AuditEvent.Action.REVEALED, get_language()).get(reason, reason)


@functools.cache
def _reason_labels(reveal: bool, language: str | None) -> dict[str, str]:
    tables: list[dict] = [
        dict(ReasonCode.choices),
        dict(RevealReason.choices),
        dict(DocumentReason.choices),
        RECORDED_REASONS,
    ]
    if reveal:
        # "suspected_fraud" is both a refusal and a reason to reveal.
        tables.insert(0, tables.pop(1))
    labels: dict[str, str] = {}
    for table in reversed(tables):  # the first table that knows a code names it
        labels.update((code, str(label)) for code, label in table.items())
    return labels


# What a role group is called on screen: where a page names a role instead of a person.
ROLE_LABELS = {
    "Counter staff": gettext_lazy("Counter staff"),
    "Supervisor": gettext_lazy("Supervisor"),
    "Compliance admin": gettext_lazy("Compliance admin"),
    "Disclosure officer": gettext_lazy("Disclosure officer"),
}


def role_label(name: str) -> str:
    """A role group's name in the page's language; a group unknown here as it is named."""
    return str(ROLE_LABELS.get(name, name))
