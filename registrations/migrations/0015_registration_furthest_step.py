"""Registration.step is named for what it holds: the furthest step of the counter flow saved."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0014_store_status_counts"),
    ]

    operations = [
        migrations.RenameField(
            model_name="registration",
            old_name="step",
            new_name="furthest_step",
        ),
    ]
