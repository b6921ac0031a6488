"""Audit jobs (verifications and exports run by the job worker), the schedule of the worker's
periodic tasks, and the action of an export's download."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0011_sign_in_throttle"),
    ]

    operations = [
        migrations.CreateModel(
            name="ScheduledRun",
            fields=[
                ("name", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("due_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "scheduled run",
                "verbose_name_plural": "scheduled runs",
            },
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("login", "Signed in"),
                    ("logout", "Signed out"),
                    ("login_failed", "Failed sign-in"),
                    ("second_factor_enrolled", "Second factor enrolled"),
                    ("second_factor_used", "Second factor passed"),
                    ("second_factor_failed", "Wrong second-factor code"),
                    ("second_factor_reset", "Second factor reset"),
                    ("draft_created", "Draft created"),
                    ("draft_saved", "Draft saved"),
                    ("draft_discarded", "Draft discarded"),
                    ("document_uploaded", "Document copy uploaded"),
                    ("submitted", "Submitted for review"),
                    ("resubmitted", "Corrected and resubmitted"),
                    ("viewed", "Record viewed"),
                    ("listed", "Records listed"),
                    ("searched", "Records searched"),
                    ("receipt_viewed", "Receipt viewed"),
                    ("revealed", "Identity field revealed"),
                    ("document_viewed", "Document copy viewed"),
                    ("approved", "Approved"),
                    ("rejected", "Rejected"),
                    ("returned", "Returned for correction"),
                    ("change_requested", "Update of information requested"),
                    ("termination_requested", "Termination requested"),
                    ("change_approved", "Change approved"),
                    ("change_rejected", "Change rejected"),
                    ("terminated", "Terminated"),
                    ("exported", "Audit log exported"),
                    ("export_downloaded", "Audit export downloaded"),
                    ("verified", "Audit chain verified"),
                    ("purged", "Identity data purged"),
                    ("keys_rotated", "Keys rotated"),
                    ("user_changed", "User or store changed"),
                ],
                max_length=32,
            ),
        ),
        migrations.CreateModel(
            name="AuditJob",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("verify", "Verification of the audit log"),
                            ("export", "Export of the audit log"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("queued", "Waiting for the worker"),
                            ("running", "Running"),
                            ("finished", "Finished"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("ip", models.GenericIPAddressField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, max_length=300)),
                ("format", models.CharField(blank=True, max_length=8)),
                ("filters", models.JSONField(blank=True, default=dict)),
                ("anchors", models.JSONField(blank=True, default=list)),
                ("progress_done", models.PositiveBigIntegerField(default=0)),
                ("progress_total", models.PositiveBigIntegerField(default=0)),
                ("result", models.JSONField(blank=True, default=dict)),
                ("stored_name", models.CharField(blank=True, max_length=255)),
                ("task_id", models.CharField(blank=True, max_length=64)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("updated_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                (
                    "requested_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="audit_jobs",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "audit job",
                "verbose_name_plural": "audit jobs",
                "ordering": ["-created_at", "-pk"],
                "indexes": [
                    models.Index(fields=["requested_by", "-created_at"], name="audit_job_user_idx"),
                    models.Index(fields=["state", "expires_at"], name="audit_job_expiry_idx"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("format", ""), ("kind", "verify")),
                            models.Q(("format__in", ["csv", "jsonl"]), ("kind", "export")),
                            _connector="OR",
                        ),
                        name="audit_job_format_of_kind",
                    )
                ],
            },
        ),
    ]
