"""Independent audit chains with head rows, and signed checkpoints.

Events written before this migration form chain 0, at the positions they had. The hash form
changes with the chains (registrations.audit.chain), so their hashes are computed again here,
once, in order, by the owner of the tables: anchors recorded before this migration no longer
apply, and `verify_audit` should be run (and its heads recorded) right after it.
"""

import hashlib
import json
from datetime import UTC

from django.db import migrations, models

from registrations import db_triggers

LEGACY_TRIGGERS = {
    "sqlite": [
        "DROP TRIGGER IF EXISTS audit_no_update",
        "DROP TRIGGER IF EXISTS audit_no_delete",
    ],
    "postgresql": [
        "DROP TRIGGER IF EXISTS audit_no_update_delete ON registrations_auditevent",
        "DROP TRIGGER IF EXISTS audit_no_truncate ON registrations_auditevent",
    ],
}


def _digest(event) -> str:
    content = {
        "at": event.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor_id": event.actor_id,
        "actor_username": event.actor_username,
        "action": event.action,
        "registration_reference": event.registration_reference,
        "store_code": event.store_code,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "reason": event.reason,
        "fields": event.fields,
        "details": event.details,
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def lift_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in LEGACY_TRIGGERS.get(vendor, []) + db_triggers.drop_statements(vendor):
        schema_editor.execute(statement)


def rechain(apps, schema_editor):
    """Put the events of the single chain into chain 0 under the new hash form."""
    AuditEvent = apps.get_model("registrations", "AuditEvent")
    AuditChain = apps.get_model("registrations", "AuditChain")
    before_last = prev = "0" * 64
    seq = 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        seq = event.seq
        new_hash = hashlib.sha256(f"0:{seq}:{prev}:{_digest(event)}".encode()).hexdigest()
        AuditEvent.objects.filter(pk=event.pk).update(chain=0, prev_hash=prev, hash=new_hash)
        before_last, prev = prev, new_hash
    if seq:
        AuditChain.objects.create(chain=0, seq=seq, prev_hash=before_last, hash=prev)


def restore_triggers(apps, schema_editor):
    for statement in db_triggers.create_statements(schema_editor.connection.vendor):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    atomic = True

    dependencies = [
        ("registrations", "0009_change_feedback_index"),
    ]

    operations = [
        migrations.RunPython(lift_triggers, migrations.RunPython.noop),
        migrations.AddField(
            model_name="auditevent",
            name="chain",
            field=models.PositiveSmallIntegerField(default=0, editable=False),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(editable=False),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64),
        ),
        migrations.AlterModelOptions(
            name="auditevent",
            options={
                "ordering": ["id"],
                "permissions": [("browse_audit", "Can browse, export and verify the audit log")],
                "verbose_name": "audit event",
                "verbose_name_plural": "audit events",
            },
        ),
        migrations.AddConstraint(
            model_name="auditevent",
            constraint=models.UniqueConstraint(
                fields=("chain", "seq"), name="audit_chain_seq_unique"
            ),
        ),
        migrations.CreateModel(
            name="AuditChain",
            fields=[
                ("chain", models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ("seq", models.PositiveBigIntegerField()),
                ("prev_hash", models.CharField(max_length=64)),
                ("hash", models.CharField(max_length=64)),
            ],
            options={
                "verbose_name": "audit chain head",
                "verbose_name_plural": "audit chain heads",
            },
        ),
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.PositiveBigIntegerField(editable=False, unique=True)),
                ("at", models.DateTimeField(editable=False)),
                ("heads", models.JSONField(default=list)),
                ("root", models.CharField(max_length=64)),
                ("prev_digest", models.CharField(max_length=64)),
                ("public_key", models.CharField(max_length=64)),
                ("signature", models.CharField(max_length=128)),
            ],
            options={
                "ordering": ["number"],
                "verbose_name": "audit checkpoint",
                "verbose_name_plural": "audit checkpoints",
            },
        ),
        migrations.RunPython(rechain, migrations.RunPython.noop),
        migrations.RunPython(restore_triggers, lift_triggers),
    ]
