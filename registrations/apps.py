from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RegistrationsConfig(AppConfig):
    name = "registrations"
    verbose_name = _("SIM registrations")

    def ready(self) -> None:
        from registrations import checks, sign_in  # noqa: F401  (registers checks and receivers)
