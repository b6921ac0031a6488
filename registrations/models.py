"""simreg's data: stores, users, registrations with their encrypted identity data, the audit log."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from registrations.crypto import (
    EncryptedCharField,
    EncryptedDateField,
    EncryptedEmailField,
    EncryptedTextField,
    blind_index,
)

# No 0/O, 1/I/L: a reference is read out over the counter.
REFERENCE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
REFERENCE_LENGTH = 10


def new_reference() -> str:
    """Ten random symbols (~49 bits), printed as XXXXX-XXXXX: short to read, unguessable."""
    body = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(REFERENCE_LENGTH))
    return f"{body[:5]}-{body[5:]}"


class Store(models.Model):
    code = models.CharField(_("code"), max_length=16, unique=True)
    name = models.CharField(_("name"), max_length=200)
    name_zh = models.CharField(_("name in Chinese"), max_length=200, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["code"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return f"{self.code} {self.display_name}"

    @property
    def display_name(self) -> str:
        """The store's name in the language of the page (the Chinese name when there is one)."""
        if self.name_zh and get_language() and get_language().startswith("zh"):
            return self.name_zh
        return self.name


class User(AbstractUser):
    """A member of staff. Roles are groups (registrations.roles); stores scope what they see."""

    stores = models.ManyToManyField(
        Store, blank=True, related_name="staff", verbose_name=_("works at")
    )
    supervised_stores = models.ManyToManyField(
        Store, blank=True, related_name="supervisors", verbose_name=_("supervises")
    )
    # When the user last looked at the decisions on their submissions (counter feedback).
    decisions_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class SignInThrottle(models.Model):
    """Sign-in attempts counted per user name, and per user name and client address.

    An attempt is counted before its password is checked, in a short transaction of its own
    holding this row's lock (registrations.services.sign_in), so that attempts in parallel
    cannot check more passwords than the limit, and no lock is held while a password hash runs.
    The key is a keyed hash: a typed name (often a password in the wrong box) and an address
    are never stored as such.
    """

    class Scope(models.TextChoices):
        NAME = "name", _("user name")
        ADDRESS = "address", _("user name from one client address")

    key = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices)
    # Attempts counted in the current window, less those whose password was right.
    attempts = models.PositiveIntegerField(default=0)
    window_ends = models.DateTimeField(null=True, blank=True)
    # Windows of a user name used up one after the other: each doubles the next one's length.
    strikes = models.PositiveSmallIntegerField(default=0)
    # Until when this address is one where the name signed in: the name's own limit, which
    # anyone anywhere can use up, does not hold it back.
    trusted_until = models.DateTimeField(null=True, blank=True)
    # The last refused attempt written to the audit log: at most one a minute.
    refusal_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in counter")
        verbose_name_plural = _("sign-in counters")
        indexes = [models.Index(fields=["window_ends"], name="sign_in_throttle_window_idx")]

    def __str__(self) -> str:
        return f"sign-in counter #{self.pk} ({self.scope})"


class DocumentType(models.TextChoices):
    HKID = "hkid", _("Hong Kong Identity Card")
    PASSPORT = "passport", _("Passport")
    MACAO_ID = "macao_id", _("Macao Resident Identity Card")
    EXIT_ENTRY_PERMIT = "exit_entry_permit", _("Exit-entry Permit for Travelling to HK and Macao")
    BUSINESS_REGISTRATION = "business_registration", _("Business Registration Certificate")


class Person(models.Model):
    """Identity data of a customer, a confirming adult or a company's responsible person.

    Every identifying value is encrypted; `document_index` is the blind index that exact-match
    look-ups and the per-person limit use.
    """

    class Kind(models.TextChoices):
        INDIVIDUAL = "individual", _("Individual")
        COMPANY = "company", _("Company")

    kind = models.CharField(_("customer type"), max_length=16, choices=Kind.choices)
    document_type = models.CharField(_("document type"), max_length=32, choices=DocumentType)
    document_number = EncryptedCharField(_("document number"), max_length=40, blank=True)
    document_index = models.CharField(max_length=16, blank=True, db_index=True, editable=False)
    name_en = EncryptedCharField(_("name in English"), max_length=200, blank=True)
    name_zh = EncryptedCharField(_("name in Chinese"), max_length=100, blank=True)
    date_of_birth = EncryptedDateField(_("date of birth"), null=True, blank=True)
    nationality = models.CharField(_("nationality"), max_length=2, blank=True)
    address = EncryptedTextField(_("address"), blank=True)
    contact_number = EncryptedCharField(_("contact number"), max_length=40, blank=True)
    email = EncryptedEmailField(_("e-mail"), blank=True)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("person")
        verbose_name_plural = _("people")

    def __str__(self) -> str:
        return f"Person #{self.pk}"

    def save(self, *args, **kwargs) -> None:
        # The index always follows the number, whoever sets it.
        self.document_index = (
            blind_index(self.document_type, self.document_number) if self.document_number else ""
        )
        super().save(*args, **kwargs)


class ReasonCode(models.TextChoices):
    DOCUMENT_UNREADABLE = "document_unreadable", _("Document unreadable")
    DOCUMENT_MISMATCH = "document_mismatch", _("Document does not match the person")
    DOCUMENT_EXPIRED = "document_expired", _("Document expired")
    MINOR_WITHOUT_ADULT = "minor_without_adult", _("Under age without confirming adult")
    OVER_LIMIT = "over_limit", _("Over the per-person limit")
    MATERIALS_INCOMPLETE = "materials_incomplete", _("Materials incomplete")
    CONTRADICTS_EXISTING = (
        "contradicts_existing",
        _("Information contradicts an existing registration"),
    )
    SUSPECTED_FRAUD = "suspected_fraud", _("Suspected fraud")
    DUPLICATE = "duplicate", _("Duplicate registration")
    OTHER = "other", _("Other")


class RevealReason(models.TextChoices):
    """Why a supervisor reveals an identity field: a code, never free text, in the audit log."""

    COMPARE_WITH_COPY = "compare_with_copy", _("Compare with the document copy")
    CONFIRM_WITH_CUSTOMER = "confirm_with_customer", _("Confirm with the customer present")
    CORRECT_ERROR = "correct_error", _("Correct an error in the record")
    SUSPECTED_FRAUD = "suspected_fraud", _("Investigate suspected fraud")
    LAWFUL_REQUEST = "lawful_request", _("Request from a law-enforcement or regulatory body")


class DocumentReason(models.TextChoices):
    """Why someone opens a document copy: a code, never free text, in the audit log."""

    CHECK_AGAINST_ORIGINAL = (
        "check_against_original",
        _("Check the copy against the original document"),
    )
    CORRECT_RETURNED_RECORD = (
        "correct_returned_record",
        _("Correct a record returned for correction"),
    )
    REVIEW_SUBMISSION = "review_submission", _("Review the submission")
    CUSTOMER_REQUEST = "customer_request", _("The customer asked about the copy")
    QUALITY_CHECK = "quality_check", _("Quality check")


class TerminationCause(models.TextChoices):
    """Why a registration ends at the customer's counter: retention can depend on it."""

    CUSTOMER_REQUEST = "customer_request", _("The customer asked for it")
    DEATH = "death", _("Death of the subscriber")
    NON_COMPLIANCE = "non_compliance", _("Non-compliance found at inspection")
    OTHER = "other", _("Other")


class Registration(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PENDING = "pending", _("Pending review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        RETURNED = "returned", _("Returned for correction")
        SUSPENDED = "suspended", _("Suspended")
        TERMINATED = "terminated", _("Terminated")

    class SimLoss(models.TextChoices):
        """What happened to a SIM reported at the counter: the registration is suspended."""

        LOST = "lost", _("Lost")
        STOLEN = "stolen", _("Stolen")
        DAMAGED = "damaged", _("Damaged")

    class NoticeLanguage(models.TextChoices):
        """The language the customer's notifications are written in, chosen at the counter."""

        ENGLISH = "en", _("English")
        CHINESE = "zh-hant", _("Traditional Chinese")

    class SimKind(models.TextChoices):
        PHYSICAL = "physical", _("Physical SIM")
        ESIM = "esim", _("eSIM")

    class Plan(models.TextChoices):
        PREPAID = "prepaid", _("Prepaid")
        SERVICE_PLAN = "service_plan", _("Service plan")

    class Channel(models.TextChoices):
        COUNTER = "counter", _("In-store counter")
        ONLINE = "online", _("Online pre-registration completed in store")

    # A SIM (and its number) is held by a registration in these states; they count towards
    # the per-person limit. A suspended registration keeps its number for the replacement.
    ACTIVE_STATUSES = (Status.PENDING, Status.RETURNED, Status.APPROVED, Status.SUSPENDED)
    # The counter may still change a registration in these states: a draft, or a returned
    # registration being corrected.
    EDITABLE_STATUSES = (Status.DRAFT, Status.RETURNED)
    DECIDED_STATUSES = (Status.APPROVED, Status.REJECTED, Status.RETURNED)

    reference = models.CharField(
        _("reference"), max_length=16, unique=True, default=new_reference, editable=False
    )
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="registrations")
    created_by = models.ForeignKey(
        User, on_delete=models.PROTECT, related_name="registrations_created"
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.DRAFT, db_index=True
    )
    furthest_step = models.PositiveSmallIntegerField(_("furthest step saved"), default=1)

    customer = models.OneToOneField(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="registration"
    )
    # The confirming adult for a customer under the policy's age, or a company's responsible person.
    representative = models.OneToOneField(
        Person, on_delete=models.PROTECT, null=True, blank=True, related_name="represented"
    )
    original_sighted = models.BooleanField(_("original document sighted"), default=False)

    sim_kind = models.CharField(_("SIM type"), max_length=16, choices=SimKind, blank=True)
    iccid = models.CharField(_("ICCID"), max_length=20, blank=True)
    eid = models.CharField(_("EID"), max_length=32, blank=True)
    msisdn = models.CharField(_("mobile number"), max_length=20, blank=True, db_index=True)
    plan = models.CharField(_("plan"), max_length=16, choices=Plan, blank=True)

    channel = models.CharField(
        _("channel"), max_length=16, choices=Channel, default=Channel.COUNTER
    )
    online_reference = models.CharField(
        _("online pre-registration reference"), max_length=40, blank=True
    )
    declaration_accepted = models.BooleanField(_("customer declaration accepted"), default=False)
    notice_language = models.CharField(
        _("language of notifications"),
        max_length=8,
        choices=NoticeLanguage,
        default=NoticeLanguage.ENGLISH,
    )
    # Identity fields (names, date of birth) that disagree with other registrations of the same
    # document, and those registrations' references: flagged to the supervisor. Never values.
    discrepancy_fields = models.JSONField(default=list, blank=True)
    discrepancy_references = models.JSONField(default=list, blank=True)

    submitted_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(_("submitted"), null=True, blank=True)
    reviewer = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    reason_code = models.CharField(_("reason"), max_length=32, choices=ReasonCode, blank=True)
    comment = EncryptedTextField(_("comment"), blank=True)
    terminated_at = models.DateTimeField(_("terminated"), null=True, blank=True)
    termination_cause = models.CharField(
        _("cause of termination"), max_length=32, choices=TerminationCause, blank=True
    )
    suspended_at = models.DateTimeField(_("suspended"), null=True, blank=True)
    sim_loss = models.CharField(_("SIM reported"), max_length=16, choices=SimLoss, blank=True)
    purged_at = models.DateTimeField(_("identity data purged"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("registration")
        verbose_name_plural = _("registrations")
        permissions = [
            ("record_registration", "Can record registrations at the counter"),
            ("review_registration", "Can review and decide registrations"),
            ("reveal_identity", "Can reveal identity data and view document copies"),
        ]
        indexes = [
            models.Index(fields=["store", "status", "submitted_at"], name="reg_queue_idx"),
            models.Index(fields=["created_by", "status"], name="reg_creator_idx"),
            models.Index(fields=["status", "terminated_at"], name="reg_retention_idx"),
            models.Index(fields=["iccid"], name="reg_iccid_idx"),
            models.Index(fields=["eid"], name="reg_eid_idx"),
            # Counter feedback (decisions on my submissions) and the dashboard's 30 days.
            models.Index(fields=["submitted_by", "decided_at"], name="reg_feedback_idx"),
            models.Index(fields=["store", "decided_at"], name="reg_decided_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=[
                        "draft",
                        "pending",
                        "approved",
                        "rejected",
                        "returned",
                        "suspended",
                        "terminated",
                    ]
                ),
                name="reg_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="draft")
                | Q(submitted_at__isnull=False, submitted_by__isnull=False),
                name="reg_submitted_has_time_and_person",
            ),
            models.CheckConstraint(
                condition=~Q(
                    status__in=["approved", "rejected", "returned", "suspended", "terminated"]
                )
                | Q(decided_at__isnull=False, reviewer__isnull=False),
                name="reg_decided_has_reviewer",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["rejected", "returned"]) | ~Q(reason_code=""),
                name="reg_refusal_has_reason",
            ),
            models.CheckConstraint(
                condition=~Q(status="terminated") | Q(terminated_at__isnull=False),
                name="reg_terminated_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="suspended") | Q(suspended_at__isnull=False) & ~Q(sim_loss=""),
                name="reg_suspended_has_time_and_cause",
            ),
            models.CheckConstraint(
                condition=Q(status="draft")
                | Q(sim_kind="physical", eid="") & ~Q(iccid="")
                | Q(sim_kind="esim", iccid="") & ~Q(eid=""),
                name="reg_sim_matches_kind",
            ),
            models.UniqueConstraint(
                fields=["iccid"],
                condition=Q(status__in=["pending", "returned", "approved", "suspended"])
                & ~Q(iccid=""),
                name="reg_iccid_unique_active",
            ),
            models.UniqueConstraint(
                fields=["eid"],
                condition=Q(status__in=["pending", "returned", "approved", "suspended"])
                & ~Q(eid=""),
                name="reg_eid_unique_active",
            ),
            models.UniqueConstraint(
                fields=["msisdn"],
                condition=Q(status__in=["pending", "returned", "approved", "suspended"])
                & ~Q(msisdn=""),
                name="reg_msisdn_unique_active",
            ),
        ]

    def __str__(self) -> str:
        return self.reference

    def get_absolute_url(self) -> str:
        return reverse("counter-record", kwargs={"reference": self.reference})


class StatusChange(models.Model):
    """One line of a registration's history: every submit, decision and resubmission."""

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="history")
    # The registration's store, copied so the dashboard counts a store's history by index.
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+", editable=False
    )
    from_status = models.CharField(max_length=16, choices=Registration.Status)
    to_status = models.CharField(max_length=16, choices=Registration.Status)
    actor = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    reason_code = models.CharField(max_length=32, choices=ReasonCode, blank=True)
    # Free text may name the customer: encrypted like identity data.
    comment = EncryptedTextField(blank=True)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = _("status change")
        verbose_name_plural = _("status changes")
        indexes = [models.Index(fields=["store", "to_status", "at"], name="history_dashboard_idx")]

    def __str__(self) -> str:
        return f"{self.from_status} → {self.to_status}"

    def save(self, *args, **kwargs) -> None:
        if self.store_id is None:
            self.store_id = self.registration.store_id
        super().save(*args, **kwargs)


class StoreStatusCount(models.Model):
    """How many registrations of a store are in a status, so that pages need no COUNT over
    the registrations. Kept by services.registration_status_count_move in the transaction of
    every status change; one row per store and status, so no counter is global."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Registration.Status)
    count = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("registration count")
        verbose_name_plural = _("registration counts")
        constraints = [
            models.UniqueConstraint(fields=["store", "status"], name="store_status_count_unique")
        ]

    def __str__(self) -> str:
        return f"{self.store_id} {self.status}: {self.count}"


class RegistrationEditor(models.Model):
    """Someone who entered or changed a registration's identity or materials, submitted it or
    asked for a change to it: the four-eyes rule keeps them from deciding it or its changes.

    Written by the counter's services in the transaction of the change itself, and read at
    decision time by one look-up on the unique (registration, user) index: never by a scan of
    the audit log, which records the same saves but grows past a billion rows.
    """

    # The unique constraint's index leads with the registration: no index of its own.
    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="editors", db_index=False
    )
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    first_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("registration editor")
        verbose_name_plural = _("registration editors")
        constraints = [
            models.UniqueConstraint(fields=["registration", "user"], name="reg_editor_unique"),
        ]

    def __str__(self) -> str:
        return f"editor #{self.user_id} of registration #{self.registration_id}"


class PendingChange(models.Model):
    """An update of info, a termination or a SIM replacement asked for at a counter of any
    store, applied only when a supervisor of the registration's store approves it."""

    class Kind(models.TextChoices):
        UPDATE = "update", _("Update of information")
        TERMINATION = "termination", _("Termination")
        REPLACEMENT = "replacement", _("SIM replacement")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    registration = models.ForeignKey(Registration, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=Kind)
    status = models.CharField(max_length=16, choices=Status, default=Status.PENDING)
    changed_fields = models.JSONField(default=list, blank=True)
    new_address = EncryptedTextField(blank=True)
    new_contact_number = EncryptedCharField(max_length=40, blank=True)
    new_email = EncryptedEmailField(blank=True)
    new_document_type = models.CharField(max_length=32, choices=DocumentType, blank=True)
    new_document_number = EncryptedCharField(max_length=40, blank=True)
    # The copy of a renewed document, kept apart from the copy the registration was approved on.
    new_document_copy = models.ForeignKey(
        "DocumentCopy", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    termination_reason = EncryptedTextField(blank=True)
    termination_cause = models.CharField(max_length=32, choices=TerminationCause, blank=True)
    # A replacement SIM for the same number: the old SIM is released only on approval.
    new_sim_kind = models.CharField(max_length=16, choices=Registration.SimKind, blank=True)
    new_iccid = models.CharField(max_length=20, blank=True)
    new_eid = models.CharField(max_length=32, blank=True)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    # The store whose counter asked for it: any store may serve a customer.
    requested_at_store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason_code = models.CharField(max_length=32, choices=ReasonCode, blank=True)
    comment = EncryptedTextField(blank=True)

    class Meta:
        verbose_name = _("pending change")
        verbose_name_plural = _("pending changes")
        indexes = [
            models.Index(fields=["status", "requested_at"], name="change_queue_idx"),
            models.Index(fields=["requested_by", "decided_at"], name="change_feedback_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["registration"],
                condition=Q(status="pending"),
                name="change_one_pending_per_registration",
            ),
            models.CheckConstraint(
                condition=Q(status="pending")
                | Q(decided_by__isnull=False, decided_at__isnull=False),
                name="change_decided_has_reviewer",
            ),
            models.UniqueConstraint(
                fields=["new_iccid"],
                condition=Q(status="pending") & ~Q(new_iccid=""),
                name="change_new_iccid_unique_pending",
            ),
            models.UniqueConstraint(
                fields=["new_eid"],
                condition=Q(status="pending") & ~Q(new_eid=""),
                name="change_new_eid_unique_pending",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class Notification(models.Model):
    """A message to a customer in the outbox: written in the transaction of the change it tells
    about, delivered by the job worker with retries (registrations.notifications).

    It names the event and the reference, never an identity value; the recipient (a contact
    number or an e-mail address) is encrypted like identity data. A failed delivery never
    undoes the change: it stays here for the store's supervisors to see.
    """

    class Channel(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("E-mail")

    class Event(models.TextChoices):
        SUBMITTED = "submitted", _("Submitted for review")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        RETURNED = "returned", _("Returned for correction")
        UPDATED = "updated", _("Update of information approved")
        CHANGE_REFUSED = "change_refused", _("Requested change refused")
        TERMINATED = "terminated", _("Terminated")
        SUSPENDED = "suspended", _("Suspended after a SIM was reported")
        REPLACED = "replaced", _("Replacement SIM approved")

    class State(models.TextChoices):
        QUEUED = "queued", _("Waiting to be sent")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Not delivered")

    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="notifications"
    )
    # The registration's store, copied so its supervisors' list of failures is one index scan.
    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel)
    event = models.CharField(max_length=16, choices=Event)
    language = models.CharField(max_length=8, choices=Registration.NoticeLanguage)
    recipient = EncryptedCharField(max_length=254)
    # A refusal's reason as it was when the change was made: a message retried for hours must
    # not give the reason of a later decision.
    reason_code = models.CharField(max_length=32, choices=ReasonCode, blank=True)
    state = models.CharField(max_length=8, choices=State, default=State.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # Why the last attempt failed, as the backend's error class or status code: never the
    # server's text, which may repeat the recipient.
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("notification")
        verbose_name_plural = _("notifications")
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="notification_due_idx"),
            models.Index(fields=["store", "state", "created_at"], name="notification_store_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} #{self.pk}"


class DocumentCopy(models.Model):
    """An uploaded copy (photo or scan), stored encrypted under a random name no URL serves."""

    class Kind(models.TextChoices):
        IDENTITY = "identity", _("Identity document")
        PROOF_OF_ADDRESS = "proof_of_address", _("Proof of address")
        REPRESENTATIVE = "representative", _("Confirming adult's or responsible person's document")

    registration = models.ForeignKey(
        Registration, on_delete=models.CASCADE, related_name="documents"
    )
    kind = models.CharField(max_length=32, choices=Kind)
    stored_name = models.CharField(max_length=64, unique=True, editable=False)
    content_type = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    uploaded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)
    purged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("document copy")
        verbose_name_plural = _("document copies")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class KeyCanary(models.Model):
    """A known value encrypted (and blind-indexed) with the keys in force when it was written.

    Start-up decrypts it: keys that cannot read it cannot read the stored data either.
    """

    token = models.TextField()
    index = models.CharField(max_length=16)
    # BLIND_INDEX_BITS when the stored blind indexes were last computed (null: a canary written
    # before this was recorded).
    index_bits = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Key canary #{self.pk}"


class BreachRecord(models.Model):
    """A suspected breach of personal data, logged by a compliance admin: when it was found and
    happened, what it touched, and whom was told when. The description may name people: it is
    encrypted like identity data. Opening, recording and updating one are audit events."""

    class Authority(models.TextChoices):
        PCPD_HK = "pcpd_hk", _("Privacy Commissioner for Personal Data (Hong Kong)")
        NPC_PH = "npc_ph", _("National Privacy Commission (Philippines)")
        OFCA_HK = "ofca_hk", _("Office of the Communications Authority (Hong Kong)")
        NTC_PH = "ntc_ph", _("National Telecommunications Commission (Philippines)")
        POLICE = "police", _("Police")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", pgettext_lazy("breach status", "Open")
        CLOSED = "closed", _("Closed")

    found_at = models.DateTimeField(_("found"))
    occurred_at = models.DateTimeField(_("happened"), null=True, blank=True)
    systems_affected = models.CharField(_("systems affected"), max_length=500)
    records_affected = models.PositiveIntegerField(_("records affected (estimate)"))
    description = EncryptedTextField(_("description"), blank=True)
    authority = models.CharField(
        _("authority notified"), max_length=16, choices=Authority, blank=True
    )
    notified_at = models.DateTimeField(_("authority notified at"), null=True, blank=True)
    subscribers_told = models.BooleanField(_("affected subscribers told"), default=False)
    subscribers_told_at = models.DateTimeField(_("subscribers told at"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=8, choices=Status, default=Status.OPEN)
    recorded_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        ordering = ["-found_at", "-pk"]
        verbose_name = _("breach record")
        verbose_name_plural = _("breach records")
        permissions = [("record_breach", "Can record and update suspected breaches")]
        indexes = [models.Index(fields=["-found_at", "-id"], name="breach_found_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(notified_at__isnull=True) | ~Q(authority=""),
                name="breach_notified_names_authority",
            ),
            models.CheckConstraint(
                condition=Q(subscribers_told=False) | Q(subscribers_told_at__isnull=False),
                name="breach_subscribers_told_has_time",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(status="closed", closed_at__isnull=False),
                name="breach_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"breach #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("breach-detail", args=[self.pk])


class AuditLogIsAppendOnly(Exception):
    pass


class AppendOnlyQuerySet(models.QuerySet):
    """The ORM side of an append-only table (the database refuses too: db_triggers)."""

    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("Audit records cannot be changed.")

    def delete(self):
        raise AuditLogIsAppendOnly("Audit records cannot be deleted.")

    def bulk_update(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit records cannot be changed.")


class AppendOnlyModel(models.Model):
    """A row is written once: saving it again or deleting it is refused."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("Audit records cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("Audit records cannot be deleted.")


class AuditEvent(AppendOnlyModel):
    """Who did what to which record, when and from where: never identity values.

    Events are hash-chained in independent chains: `hash` covers the chain, the position, the
    previous event's hash and the event's content, so an edited, deleted, inserted or reordered
    event breaks its chain; signed checkpoints (AuditCheckpoint) catch a re-hashed or cut chain.
    """

    class Action(models.TextChoices):
        LOGIN = "login", _("Signed in")
        LOGOUT = "logout", _("Signed out")
        LOGIN_FAILED = "login_failed", _("Failed sign-in")
        SECOND_FACTOR_ENROLLED = "second_factor_enrolled", _("Second factor enrolled")
        SECOND_FACTOR_USED = "second_factor_used", _("Second factor passed")
        SECOND_FACTOR_FAILED = "second_factor_failed", _("Wrong second-factor code")
        SECOND_FACTOR_RESET = "second_factor_reset", _("Second factor reset")
        DRAFT_CREATED = "draft_created", _("Draft created")
        DRAFT_SAVED = "draft_saved", _("Draft saved")
        DRAFT_DISCARDED = "draft_discarded", _("Draft discarded")
        DOCUMENT_UPLOADED = "document_uploaded", _("Document copy uploaded")
        SUBMITTED = "submitted", _("Submitted for review")
        RESUBMITTED = "resubmitted", _("Corrected and resubmitted")
        VIEWED = "viewed", _("Record viewed")
        LISTED = "listed", _("Records listed")
        SEARCHED = "searched", _("Records searched")
        RECEIPT_VIEWED = "receipt_viewed", _("Receipt viewed")
        REVEALED = "revealed", _("Identity field revealed")
        DOCUMENT_VIEWED = "document_viewed", _("Document copy viewed")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        RETURNED = "returned", _("Returned for correction")
        CHANGE_REQUESTED = "change_requested", _("Update of information requested")
        TERMINATION_REQUESTED = "termination_requested", _("Termination requested")
        CHANGE_APPROVED = "change_approved", _("Change approved")
        CHANGE_REJECTED = "change_rejected", _("Change rejected")
        TERMINATED = "terminated", _("Terminated")
        SUSPENDED = "suspended", _("SIM reported lost, stolen or damaged: suspended")
        IDENTITY_CHECK_FAILED = (
            "identity_check_failed",
            _("Customer's identity did not match the record"),
        )
        REPLACEMENT_REQUESTED = "replacement_requested", _("SIM replacement requested")
        NOTIFICATION_SENT = "notification_sent", _("Notification sent to the customer")
        NOTIFICATION_FAILED = "notification_failed", _("Notification could not be delivered")
        NOTIFICATION_RETRIED = "notification_retried", _("Notification sent again on request")
        EXPORTED = "exported", _("Audit log exported")
        EXPORT_DOWNLOADED = "export_downloaded", _("Audit export downloaded")
        VERIFIED = "verified", _("Audit chain verified")
        PURGED = "purged", _("Identity data purged")
        KEYS_ROTATED = "keys_rotated", _("Keys rotated")
        USER_CHANGED = "user_changed", _("User or store changed")
        BREACH_RECORDED = "breach_recorded", _("Suspected breach recorded")
        BREACH_UPDATED = "breach_updated", _("Breach record updated")
        SUBJECT_REPORT = "subject_report", _("Subscriber's own report produced")

    # The chain this event belongs to and its position there (1, 2, ...): see registrations.audit.
    chain = models.PositiveSmallIntegerField(default=0, editable=False)
    seq = models.PositiveBigIntegerField(editable=False)
    at = models.DateTimeField(editable=False)
    actor = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=32, choices=Action)
    registration_reference = models.CharField(max_length=16, blank=True)
    store_code = models.CharField(max_length=16, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    fields = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        # The event number shown everywhere is the id: it orders the whole log. Integrity rests
        # on each chain's positions and hashes, never on the id.
        ordering = ["id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        permissions = [("browse_audit", "Can browse, export and verify the audit log")]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="audit_chain_seq_unique"),
        ]
        indexes = [
            models.Index(fields=["at"], name="audit_at_idx"),
            models.Index(fields=["actor", "at"], name="audit_actor_idx"),
            models.Index(fields=["action", "at"], name="audit_action_idx"),
            models.Index(fields=["store_code", "at"], name="audit_store_idx"),
            models.Index(fields=["registration_reference", "at"], name="audit_record_idx"),
            models.Index(fields=["actor_username", "action", "at"], name="audit_sign_in_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.action}"


class AuditChain(models.Model):
    """The head of one audit chain: the position and hash of its newest event.

    One row per chain, updated by each append in the same statement that inserts the event, so
    that appends to one chain are serialised by this row's lock and appends to different chains
    never wait for each other. It only speeds appends up: verification trusts the events.
    """

    chain = models.PositiveSmallIntegerField(primary_key=True)
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("audit chain head")
        verbose_name_plural = _("audit chain heads")

    def __str__(self) -> str:
        return f"chain {self.chain} at {self.seq}"


class AuditCheckpoint(AppendOnlyModel):
    """Every chain's head at one moment, under a Merkle root signed with the audit key (Ed25519).

    Checkpoints are numbered without gaps and each names the digest of the one before, so a
    deleted or altered checkpoint is seen; each head must still exist with that hash, so a cut
    tail or a re-hashed chain is seen too. Append-only like the events.
    """

    number = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(editable=False)
    heads = models.JSONField(default=list)
    root = models.CharField(max_length=64)
    prev_digest = models.CharField(max_length=64)
    public_key = models.CharField(max_length=64)
    signature = models.CharField(max_length=128)

    class Meta:
        ordering = ["number"]
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")

    def __str__(self) -> str:
        return f"checkpoint {self.number}"


class AuditJob(models.Model):
    """A verification or an export of the audit log that a compliance admin asked for from the
    audit page, run by the job worker rather than inside the web request.

    It holds no identity data: filters, anchors, counts, the outcome of a check and the name of
    the encrypted file an export was written to. The file is kept until `expires_at`.
    """

    class Kind(models.TextChoices):
        VERIFY = "verify", _("Verification of the audit log")
        EXPORT = "export", _("Export of the audit log")

    class State(models.TextChoices):
        QUEUED = "queued", _("Waiting for the worker")
        RUNNING = "running", _("Running")
        FINISHED = "finished", _("Finished")
        FAILED = "failed", _("Failed")

    kind = models.CharField(max_length=16, choices=Kind)
    requested_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="audit_jobs")
    state = models.CharField(max_length=16, choices=State, default=State.QUEUED)
    # Where the request came from: the job's audit events name it, as they would have had the
    # work run inside the request.
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    format = models.CharField(max_length=8, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    anchors = models.JSONField(default=list, blank=True)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    stored_name = models.CharField(max_length=255, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    # Moved on with every progress report: a running job that stops moving lost its worker.
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("audit job")
        verbose_name_plural = _("audit jobs")
        indexes = [
            models.Index(fields=["requested_by", "-created_at"], name="audit_job_user_idx"),
            models.Index(fields=["state", "expires_at"], name="audit_job_expiry_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="verify", format="")
                | Q(kind="export", format__in=["csv", "jsonl"]),
                name="audit_job_format_of_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} job #{self.pk} ({self.state})"

    def get_absolute_url(self) -> str:
        return reverse("audit-job", args=[self.pk])

    @property
    def is_done(self) -> bool:
        return self.state in {self.State.FINISHED, self.State.FAILED}


class ScheduledRun(models.Model):
    """When a periodic task of the job worker is next due.

    The worker that moves `due_at` forward (a conditional UPDATE) is the one that enqueues the
    run, so several workers never enqueue the same run twice.
    """

    # The row named so holds no periodic task: its time is the last heartbeat of any job worker
    # (services.jobs.worker_heartbeat_record), which `/healthz` reports.
    WORKER_HEARTBEAT = "worker_heartbeat"

    name = models.CharField(max_length=64, primary_key=True)
    due_at = models.DateTimeField()

    class Meta:
        verbose_name = _("scheduled run")
        verbose_name_plural = _("scheduled runs")

    def __str__(self) -> str:
        return f"{self.name} due at {self.due_at:%Y-%m-%d %H:%M:%S}"
