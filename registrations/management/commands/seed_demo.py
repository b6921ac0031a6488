from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registrations import roles, services

STORES = [
    ("MK01", "Mong Kok", "旺角", "1 Argyle Street, Mong Kok, Kowloon"),
    ("CWB1", "Causeway Bay", "銅鑼灣", "500 Hennessy Road, Causeway Bay, Hong Kong"),
]
# (username, password, role, works at, supervises, superuser)
USERS = [
    ("counter.mk", "demo-counter-mk", roles.COUNTER_STAFF, ["MK01"], [], False),
    ("counter.cwb", "demo-counter-cwb", roles.COUNTER_STAFF, ["CWB1"], [], False),
    ("supervisor", "demo-supervisor", roles.SUPERVISOR, [], ["MK01", "CWB1"], False),
    ("compliance", "demo-compliance", roles.COMPLIANCE_ADMIN, [], [], False),
    ("admin", "demo-admin", None, [], [], True),
]


class Command(BaseCommand):
    help = "Create demo stores and one demo user per role, and print their logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (never in production)."
        )

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "seed_demo creates users with published passwords: it runs only with DEBUG on "
                "(make run) or with --force."
            )
        stores = {
            code: services.store_create_or_update(
                code=code, name=name, name_zh=name_zh, address=address
            )
            for code, name, name_zh, address in STORES
        }
        self.stdout.write("Demo logins:")
        for username, password, role, works_at, supervises, superuser in USERS:
            services.user_create_or_update(
                username=username,
                password=password,
                roles=[role] if role else [],
                stores=[stores[c] for c in works_at],
                supervised_stores=[stores[c] for c in supervises],
                is_superuser=superuser,
            )
            label = role or "Superuser"
            self.stdout.write(f"  {label:<17} {username:<12} password: {password}")
