"""The app's tables that hold customers' identity data, for the commands that copy whole tables
out of the database or into it (Django's `dumpdata` and `loaddata`): those would move identity
data around the app's audited pages and services, decrypted on the way out."""

from __future__ import annotations

from collections.abc import Iterable

from django.apps import apps
from django.db.models import Model
from django.utils.translation import gettext as _

from registrations.crypto import EncryptedFieldMixin

# Not encrypted, and identity data all the same: a registration's row ties a customer to a
# mobile number and a SIM; a copy's row says whose document lies under which stored name.
ALWAYS = ("Registration", "DocumentCopy")


def identity_models() -> list[type[Model]]:
    """Every model of the app with an encrypted field, and those of ALWAYS, by label."""
    app = apps.get_app_config("registrations")
    found = {app.get_model(name) for name in ALWAYS}
    found |= {
        model
        for model in app.get_models()
        if any(isinstance(field, EncryptedFieldMixin) for field in model._meta.concrete_fields)
    }
    return sorted(found, key=lambda model: model._meta.label)


def identity_refusal(command: str, models: Iterable[type[Model]]) -> str:
    labels = [model._meta.label for model in models]
    return _(
        "%(command)s refuses customers' identity data (%(models)s): it would move it in clear, "
        "around the app's audited pages and services. Leave these out with %(excludes)s."
    ) % {
        "command": command,
        "models": ", ".join(labels),
        "excludes": " ".join(f"--exclude {label}" for label in labels),
    }
