"""Remove what the jurisdiction's policy no longer allows to keep."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.core.management.base import BaseCommand
from django.utils import timezone

from registrations import documents, selectors, services
from registrations.policy import current_policy


@dataclass(frozen=True)
class Purge:
    """One kind of expired data: how to count it, and how to remove it (returning a count)."""

    label: str
    count: Callable[[], int]
    run: Callable[[], int]
    done: str = "deleted"


class Command(BaseCommand):
    help = (
        "Purge the identity data of registrations terminated longer ago than the policy keeps "
        "them (the rows stay, marked purged), delete stale drafts with their people and "
        "encrypted copies, and stored files that no record names. --dry-run only counts."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Print what would be removed; remove nothing."
        )

    def purges(self) -> list[Purge]:
        now = timezone.now()
        policy = current_policy()
        return [
            Purge(
                label=(
                    "identity data of registrations terminated or rejected more than "
                    f"{policy.retention_after_termination.days} days ago ({policy.code} policy)"
                ),
                count=lambda: selectors.registrations_past_retention(now=now).count(),
                run=lambda: services.registrations_purge_expired(now=now),
                done="purged",
            ),
            Purge(
                label=f"stale drafts (untouched for more than {policy.draft_max_age.days} days)",
                count=lambda: selectors.drafts_stale(now=now).count(),
                run=lambda: services.drafts_purge_stale(now=now),
            ),
            Purge(
                label="orphaned document files",
                count=lambda: len(
                    documents.orphan_files(known=selectors.document_stored_names(), now=now)
                ),
                run=lambda: services.document_files_purge_orphans(now=now),
            ),
            Purge(
                label="sign-in counters that hold nothing back any more",
                count=lambda: selectors.sign_in_counters_idle(now=now).count(),
                run=lambda: services.sign_in_counters_purge(now=now),
            ),
        ]

    def handle(self, *args, dry_run: bool = False, **options):
        for purge in self.purges():
            if dry_run:
                self.stdout.write(f"{purge.label}: {purge.count()} would be {purge.done} (dry run)")
            else:
                self.stdout.write(f"{purge.label}: {purge.run()} {purge.done}")
