"""Counts of registrations per store and status, filled in from the rows already stored.

From here on the services keep them in the transaction of every status change; the pages
read them instead of counting the registrations.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Count


def fill(apps, schema_editor):
    Registration = apps.get_model("registrations", "Registration")
    StoreStatusCount = apps.get_model("registrations", "StoreStatusCount")
    db = schema_editor.connection.alias
    rows = (
        Registration.objects.using(db)
        .values_list("store_id", "status")
        .annotate(n=Count("*"))
        .order_by()
    )
    StoreStatusCount.objects.using(db).bulk_create(
        (StoreStatusCount(store_id=store, status=status, count=n) for store, status, n in rows),
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0013_registration_editors"),
    ]

    operations = [
        migrations.CreateModel(
            name="StoreStatusCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("draft", "Draft"),
                            ("pending", "Pending review"),
                            ("approved", "Approved"),
                            ("rejected", "Rejected"),
                            ("returned", "Returned for correction"),
                            ("terminated", "Terminated"),
                        ],
                        max_length=16,
                    ),
                ),
                ("count", models.BigIntegerField(default=0)),
                (
                    "store",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="registrations.store",
                    ),
                ),
            ],
            options={
                "verbose_name": "registration count",
                "verbose_name_plural": "registration counts",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("store", "status"), name="store_status_count_unique"
                    )
                ],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
