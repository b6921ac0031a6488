"""Django's `dumpdata`, refusing the tables that hold customers' identity data.

A dump writes every row as it reads it, identity fields decrypted, to a file nobody audits:
those tables leave the database only through the app's pages and exports. Everything else
(stores, users, roles, the audit log) dumps as before; so does a dump that excludes them.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import CommandError
from django.core.management.commands import dumpdata
from django.core.management.utils import parse_apps_and_model_labels

from registrations.management.identity_data import identity_models, identity_refusal


class Command(dumpdata.Command):
    def handle(self, *app_labels, **options):
        refused = self.identity_models_dumped(app_labels, options["exclude"])
        if refused:
            raise CommandError(identity_refusal("dumpdata", refused))
        return super().handle(*app_labels, **options)

    @staticmethod
    def identity_models_dumped(app_labels, excludes) -> list:
        """The identity models the labels (all apps when none) take in, less those excluded."""
        try:
            excluded_models, excluded_apps = parse_apps_and_model_labels(excludes)
        except CommandError:
            return []  # Django's own handling reports the unknown label
        app = apps.get_app_config("registrations")
        if app in excluded_apps:
            return []
        chosen = set(identity_models()) if not app_labels else set()
        for label in app_labels:
            app_label, _dot, model_label = label.partition(".")
            if app_label != app.label:
                continue
            if not model_label:
                chosen |= set(identity_models())
                continue
            try:
                chosen.add(app.get_model(model_label))
            except LookupError:
                continue  # reported by Django's own handling
        return [
            model for model in identity_models() if model in chosen and model not in excluded_models
        ]
