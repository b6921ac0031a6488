"""Who entered or changed each registration (the four-eyes rule), filled in for existing records.

The rows come from what the tables already hold: creator, submitters of every round, uploaders
of copies, requesters of changes. Saves of a step by someone else are only in the audit log:
those are read for the records still open to a decision (draft, pending, returned), by the
record's reference, which the audit log indexes; decided records' saves do not decide anything
any more. Rows filled in here carry the time of the migration, not of the save.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

BATCH = 1000
OPEN_STATUSES = ("draft", "pending", "returned")
EDIT_ACTIONS = (
    "draft_created",
    "draft_saved",
    "document_uploaded",
    "submitted",
    "resubmitted",
    "change_requested",
    "termination_requested",
)


def _batches(rows):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def fill_editors(apps, schema_editor):
    db = schema_editor.connection.alias
    Registration = apps.get_model("registrations", "Registration")
    StatusChange = apps.get_model("registrations", "StatusChange")
    DocumentCopy = apps.get_model("registrations", "DocumentCopy")
    PendingChange = apps.get_model("registrations", "PendingChange")
    AuditEvent = apps.get_model("registrations", "AuditEvent")
    Editor = apps.get_model("registrations", "RegistrationEditor")

    def add(pairs):
        Editor.objects.using(db).bulk_create(
            [Editor(registration_id=r, user_id=u) for r, u in set(pairs) if r and u],
            ignore_conflicts=True,
        )

    registrations = Registration.objects.using(db).order_by()
    for batch in _batches(
        registrations.values_list("pk", "created_by_id", "submitted_by_id").iterator(BATCH)
    ):
        add([(pk, creator) for pk, creator, _ in batch] + [(pk, sub) for pk, _, sub in batch])
    sources = (
        StatusChange.objects.using(db)
        .filter(to_status="pending")
        .values_list("registration_id", "actor_id"),
        DocumentCopy.objects.using(db).values_list("registration_id", "uploaded_by_id"),
        PendingChange.objects.using(db).values_list("registration_id", "requested_by_id"),
    )
    for source in sources:
        for batch in _batches(source.order_by().iterator(BATCH)):
            add(batch)
    open_records = registrations.filter(status__in=OPEN_STATUSES).values_list("reference", "pk")
    for batch in _batches(open_records.iterator(BATCH)):
        by_reference = dict(batch)
        saves = (
            AuditEvent.objects.using(db)
            .filter(
                registration_reference__in=by_reference,
                action__in=EDIT_ACTIONS,
                actor__isnull=False,
            )
            .order_by()
            .values_list("registration_reference", "actor_id")
            .distinct()
        )
        add((by_reference[reference], actor) for reference, actor in saves)


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0012_audit_jobs"),
    ]

    operations = [
        migrations.CreateModel(
            name="RegistrationEditor",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("first_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "registration",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="editors",
                        to="registrations.registration",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "registration editor",
                "verbose_name_plural": "registration editors",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("registration", "user"), name="reg_editor_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(fill_editors, migrations.RunPython.noop, elidable=True),
    ]
