from django.db import migrations

from registrations import db_triggers


def create_roles(apps, schema_editor):
    from registrations.roles import ensure_roles

    ensure_roles(apps)


def create_key_canary(apps, schema_editor):
    from registrations.checks import canary_values

    KeyCanary = apps.get_model("registrations", "KeyCanary")
    if not KeyCanary.objects.exists():
        token, index = canary_values()
        KeyCanary.objects.create(token=token, index=index)


def create_triggers(apps, schema_editor):
    for statement in db_triggers.create_statements(
        schema_editor.connection.vendor, tables=(db_triggers.EVENTS,)
    ):
        schema_editor.execute(statement)


def drop_triggers(apps, schema_editor):
    for statement in db_triggers.drop_statements(
        schema_editor.connection.vendor, tables=(db_triggers.EVENTS,)
    ):
        schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(create_roles, migrations.RunPython.noop),
        migrations.RunPython(create_key_canary, migrations.RunPython.noop),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
