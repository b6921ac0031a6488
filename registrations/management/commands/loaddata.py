"""Django's `loaddata`, refusing fixtures that hold customers' identity data.

Loading saves rows raw: no validation, no blind index, no audit event, and the fixture file
holds the identity data in clear. Rows of those tables come in through the counter's services
only. A fixture row of such a table stops the whole load, which rolls back; `--exclude` skips
those rows instead, as Django's own option does for any table.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.core.management.commands import loaddata

from registrations.management.identity_data import identity_models, identity_refusal


class Command(loaddata.Command):
    def loaddata(self, fixture_labels):
        self.identity_models = identity_models()
        return super().loaddata(fixture_labels)

    def save_obj(self, obj):
        model = type(obj.object)
        excluded = model._meta.app_config in self.excluded_apps or model in self.excluded_models
        if not excluded and model in self.identity_models:
            raise CommandError(identity_refusal("loaddata", self.identity_models))
        return super().save_obj(obj)
