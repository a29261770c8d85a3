"""`carebell seed-demo --patients N [--seed S]`: fill the database with fictional data."""

from __future__ import annotations

import datetime as dt

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from tqdm import tqdm

from carebell.demo.seeding import DatabaseNotEmpty, describe_clock, seed_demo


def _instant(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = (
        "Create the Maple Health demo organization (a clinic and a pharmacy) with N "
        "fictional patients, their contacts, appointments, prescriptions and fills, and "
        "enable its default automated messages."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=300, help="How many patients.")
        parser.add_argument("--seed", type=int, default=1, help="Same seed, same data.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even though the database has patients (adds another organization).",
        )
        parser.add_argument(
            "--now",
            type=_instant,
            default=None,
            help="Pretend it is this ISO instant (for reproducible data).",
        )
        parser.add_argument("--no-progress", action="store_true", help="No progress bar.")

    def handle(self, *args, **options) -> None:
        if options["patients"] < 0:
            raise CommandError("--patients must be 0 or more.")
        now = options["now"] or timezone.now()
        self._migrate_if_needed()
        with tqdm(
            total=options["patients"],
            unit="patients",
            unit_scale=True,
            disable=options["no_progress"] or None,
            file=self.stderr._out,
        ) as bar:
            try:
                report = seed_demo(
                    options["patients"], options["seed"], now, options["force"], bar.update
                )
            except DatabaseNotEmpty as full:
                raise CommandError(
                    f"The database already has {full.args[0]} patients; seed-demo fills an "
                    "empty database. Use --force to add another demo organization anyway."
                ) from None
        rate = report.total_rows / report.seconds if report.seconds else 0
        self.stdout.write(
            f"Seeded {report.organization.name}: {options['patients']} patients, "
            f"{report.total_rows} rows in {report.seconds:.1f} s ({rate:,.0f} rows/s)."
        )
        for label, count in sorted(report.rows.items()):
            self.stdout.write(f"  {label}: {count}")
        self.stdout.write(describe_clock(report.clinic, now))

    def _migrate_if_needed(self) -> None:
        """A fresh data dir (or an older database) is set up first, as `carebell
        demo` does, rather than failing on a missing table."""
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            self.stderr.write("Setting up the database first (carebell migrate).")
            call_command("migrate", interactive=False, verbosity=0)
