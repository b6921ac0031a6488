import datetime
import hmac

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registrations import roles, selectors, services
from registrations.documents import CheckedUpload
from registrations.models import Registration, Store, User

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
    ("admin", "demo-superuser", None, [], [], True),
]


def demo_totp_key(username: str) -> str:
    """The authenticator key (hex) of a demo user: derived from this installation's secret key,
    so that `demo_otp` can print the current code and seeding again keeps the same key."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"simreg demo authenticator:{username}".encode(), "sha256"
    ).digest()
    return digest[:20].hex()


def _enrol_demo_second_factor(user) -> None:
    """Enrol the demo user's authenticator, unless it already is (seeding runs at every start)."""
    key = demo_totp_key(user.get_username())
    device = selectors.second_factor_device_for(user=user)
    if device is None or not hmac.compare_digest(device.key, key):
        services.second_factor_enrol_key(user=user, key=key)


# A 1x1 PNG stands in for the scan of each demo customer's document.
DEMO_SCAN = CheckedUpload(
    data=bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7358184000000"
        "0049454e44ae426082"
    ),
    content_type="image/png",
)
# Fictitious customers with valid check digits: (store, name, Chinese name, HKID, ICCID, mobile,
# what the supervisor does with it).
SAMPLES = [
    ("MK01", "CHAN Siu Ming", "陳小明", "A1234563", "8985200123456789017", "91234501", None),
    ("MK01", "WONG Mei Ling", "黃美玲", "Z683365A", "89852001234567890126", "91234502", None),
    ("MK01", "LEE Ka Fai", "李家輝", "K1234560", "8985200000000000101", "91234503", "returned"),
    ("CWB1", "CHEUNG Wing Yan", "張詠欣", "XA1234568", "8985200000000000119", "91234504", None),
    ("CWB1", "HO Tsz Kin", "何子健", "AB9876543", "8985200000000000127", "91234505", "approved"),
]


def _sample_registrations() -> int:
    """A few records in every state, made through the same services as the counter uses."""
    if Registration.objects.exists():
        return 0
    supervisor = User.objects.get(username="supervisor")
    for code, name_en, name_zh, hkid, iccid, mobile, decision in SAMPLES:
        store = Store.objects.get(code=code)
        counter = store.staff.get()
        registration = services.registration_create_draft(store=store, actor=counter)
        services.document_copy_store(
            registration=registration, kind="identity", upload=DEMO_SCAN, actor=counter
        )
        services.registration_save_materials(
            registration=registration,
            actor=counter,
            materials=services.MaterialsDetails(
                customer_kind="individual",
                document_type="hkid",
                original_sighted=True,
                sim_kind="physical",
                iccid=iccid,
                msisdn=mobile,
                plan="prepaid",
            ),
        )
        services.registration_save_channel(
            registration=registration, actor=counter, channel="counter"
        )
        services.registration_save_identity(
            registration=registration,
            actor=counter,
            identity=services.IdentityDetails(
                name_en=name_en,
                name_zh=name_zh,
                document_number=hkid,
                date_of_birth=datetime.date(1988, 3, 14),
                nationality="HK",
                address="Flat 8B, 12 Demo Street, Hong Kong",
                contact_number=mobile,
                email="",
            ),
        )
        services.registration_submit(
            registration=registration, actor=counter, declaration_accepted=True
        )
        if decision:
            services.registration_decide(
                registration=registration,
                reviewer=supervisor,
                outcome=decision,
                reason_code="document_unreadable" if decision == "returned" else "",
                comment="The photo of the card is blurred." if decision == "returned" else "",
            )
    return len(SAMPLES)


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
            user = services.user_create_or_update(
                username=username,
                password=password,
                roles=[role] if role else [],
                stores=[stores[c] for c in works_at],
                supervised_stores=[stores[c] for c in supervises],
                is_superuser=superuser,
            )
            label = role or "Superuser"
            line = f"  {label:<17} {username:<12} password: {password:<17}"
            if roles.needs_second_factor(user):
                _enrol_demo_second_factor(user)
                line += f"  code: manage.py demo_otp {username}"
            self.stdout.write(line.rstrip())
        self.stdout.write(
            "A user with a code signs in with it after the password: `python manage.py demo_otp "
            "USERNAME` prints the current one (`--key` prints the key for an authenticator app)."
        )
        made = _sample_registrations()
        if made:
            self.stdout.write(f"Created {made} sample registrations (fictitious customers).")
