"""Sign-in counters: attempts counted per user name, and per user name and client address,
before the password is checked (registrations.services.sign_in)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registrations", "0010_audit_chains_checkpoints"),
    ]

    operations = [
        migrations.CreateModel(
            name="SignInThrottle",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("key", models.CharField(max_length=64, unique=True)),
                (
                    "scope",
                    models.CharField(
                        choices=[
                            ("name", "user name"),
                            ("address", "user name from one client address"),
                        ],
                        max_length=8,
                    ),
                ),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("window_ends", models.DateTimeField(blank=True, null=True)),
                ("strikes", models.PositiveSmallIntegerField(default=0)),
                ("trusted_until", models.DateTimeField(blank=True, null=True)),
                ("refusal_recorded_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "verbose_name": "sign-in counter",
                "verbose_name_plural": "sign-in counters",
                "indexes": [
                    models.Index(fields=["window_ends"], name="sign_in_throttle_window_idx")
                ],
            },
        ),
    ]
