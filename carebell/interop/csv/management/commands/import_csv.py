"""`carebell import-csv KIND FILE`: import patients (with contacts), appointments,
prescriptions or fills from a CSV file, all or nothing; `--dry-run` checks every row
and writes nothing. The report lists each row's problem (row, column, value,
reason); `--json` prints it as JSON. Exit status: 0 done (or a clean dry run), 1 the
file has problems (nothing was written), 2 a usage error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from carebell.audit import trail
from carebell.interop.csv.columns import FileKind
from carebell.interop.csv.ingest import import_csv
from carebell.sites.models import Site


class Command(BaseCommand):
    help = "Import a CSV file of patients, appointments, prescriptions or fills."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=[k.value for k in FileKind])
        parser.add_argument("file", help="The CSV file (UTF-8, comma-separated, a header line)")
        parser.add_argument("--site", help="The site: its id, its name, or its organization's slug")
        parser.add_argument("--dry-run", action="store_true", help="Check only; write nothing")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON")
        parser.add_argument(
            "--source", default="csv", help="The records' source, the upsert key with their ids"
        )

    def handle(self, *args, kind, file, site, dry_run, source, **options) -> None:
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file", returncode=2)
        chosen = find_site(site)
        problems: list = []
        with path.open("rb") as stream, _bar(path.stat().st_size) as bar:

            def progress(rows: int, consumed: int) -> None:
                bar.update(consumed - bar.n)

            report = import_csv(
                kind, stream, chosen, source=source, dry_run=dry_run,
                on_problems=problems.extend, on_progress=progress,
            )  # fmt: skip
        trail.record(
            None, "import", object_type="interop_csv.file", site_id=chosen.pk,
            detail={"system": "cli", **report.as_dict()},
        )  # fmt: skip
        if options["json"]:
            self.stdout.write(
                _json({**report.as_dict(), "problems": [p._asdict() for p in problems]})
            )
        else:
            self._print(report, problems)
        if not report.ok:
            raise SystemExit(1)

    def _print(self, report, problems) -> None:
        if report.file_problem:
            self.stderr.write(f"carebell: {report.file_problem}")
            return
        for p in problems:
            where = f"row {p.row}" + (f", {p.column}" if p.column else "")
            self.stdout.write(f"{where}: {p.reason}")
        counts = (
            f"{report.rows} rows: {report.created} new, {report.changed} changed, "
            f"{report.unchanged} unchanged"
        )
        if report.problems:
            self.stdout.write(
                f"{report.problems} problems in {report.rows} rows: nothing was written."
            )
        elif report.dry_run:
            self.stdout.write(f"Dry run, nothing written. {counts} if applied.")
        else:
            self.stdout.write(f"Imported. {counts}.")


def find_site(given: str | None) -> Site:
    sites = Site.objects.all()
    if given is None:
        if sites.count() == 1:
            return sites.get()
        raise CommandError("there is more than one site: say which with --site", returncode=2)
    found = list(sites.filter(pk=int(given))) if given.isdigit() else []
    found = found or list(sites.filter(name=given))
    found = found or list(sites.filter(organization__slug=given))
    if len(found) == 1:
        return found[0]
    if found:
        raise CommandError(
            f"organization {given!r} has several sites: give the site's id", returncode=2
        )
    raise CommandError(f"no site {given!r} (give its id, name or organization slug)", returncode=2)


def _bar(total: int):
    from tqdm import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, leave=False, disable=None)


def _json(data: dict) -> str:
    return json.dumps(data, default=str, indent=1)
