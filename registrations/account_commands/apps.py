from django.apps import AppConfig


class AccountCommandsConfig(AppConfig):
    name = "registrations.account_commands"
    label = "simreg_account_commands"
    verbose_name = "simreg account commands"
