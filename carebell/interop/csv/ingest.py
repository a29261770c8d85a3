"""A CSV file into carebell, through the entry points, all or nothing.

`import_csv` reads the file once, a batch of rows at a time (the memory a batch
holds, and one key per row to find a record that is in the file twice). Each batch
is checked against the database — the patients or prescriptions a row names, the
records it would create or change, the fields each entry point validates — and,
unless it is a dry run, written through the entry points for many rows
(people.bulk.save_people, appointments.actions.save_appointments; pharmacy.actions
row by row), which replan once per batch and audit with the importing user or the
source as actor. The whole apply is one transaction:
after the first problem nothing more is written, the rest of the file is still
checked so the report names every row's problem, and the transaction is rolled back.
A dry run makes the same checks and writes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from carebell.interop.csv import handlers
from carebell.interop.csv.columns import FileKind
from carebell.interop.csv.parse import FileProblem, Parsed, read_file
from carebell.interop.csv.rows import Context, Problem, key_of
from carebell.planning import replan

#: Rows checked (and written) together: one query per table per batch. The apply's
#: planner runs once per batch and site-local day, so fewer, larger batches cost less
#: (20,000 appointment rows over 40 days, Python and PostgreSQL CPU per row: 0.63 ms
#: in one batch, 0.74 ms in two, 0.88 ms in four); the memory a batch holds grows
#: with it, never with the file.
BATCH = 20_000


@dataclass
class Report:
    """What an import found and did. `problems` counts every problem reported;
    `file_problem` is set when the file could not be read at all."""

    kind: str
    dry_run: bool
    rows: int = 0
    problems: int = 0
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    applied: bool = False
    file_problem: str = ""
    samples: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.file_problem

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "dry_run": self.dry_run,
            "applied": self.applied,
            "rows": self.rows,
            "created": self.created,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "problem_count": self.problems,
            "file_problem": self.file_problem,
        }


class _Rejected(Exception):
    """Rolls the apply back: the file had problems."""


Progress = Callable[[int, int], None]  # (rows read, bytes read)
ProblemSink = Callable[[list[Problem]], None]


def import_csv(
    kind: FileKind | str,
    stream: BinaryIO,
    site,
    *,
    by=None,
    source: str = "csv",
    dry_run: bool = False,
    now: dt.datetime | None = None,
    on_problems: ProblemSink | None = None,
    on_progress: Progress | None = None,
) -> Report:
    """Import `stream` (a CSV file of `kind`) into `site`; see the module docstring.
    Problems go to `on_problems` a batch at a time (the report keeps their count
    and the first few)."""
    kind = FileKind(kind)
    now = now or timezone.now()
    report = Report(kind.value, dry_run)
    run = _Run(kind, site, by, source, now, report, on_problems, on_progress)
    try:
        if dry_run:
            run.go(stream, write=False)
        else:
            with transaction.atomic():
                run.go(stream, write=True)
                if not report.ok:
                    raise _Rejected
                report.applied = True
    except FileProblem as problem:
        report.file_problem = str(problem)
    except _Rejected:
        pass
    if not dry_run and not report.applied:
        report.created = report.changed = report.unchanged = 0  # nothing was written
    return report


class _Run:
    def __init__(self, kind, site, by, source, now, report, on_problems, on_progress) -> None:
        self.kind, self.site, self.by, self.source, self.now = kind, site, by, source, now
        self.report = report
        self.on_problems = on_problems
        self.on_progress = on_progress
        self.handler = handlers.for_kind(kind)(site, source)
        self.seen: dict[tuple, int] = {}  # each record's key → the row that wrote it
        self.writing = True

    def go(self, stream: BinaryIO, *, write: bool) -> None:
        self.writing = write
        today = timezone.localdate(self.now, self.site.zone)
        context = Context(self.site.zone, (self.site.phone_region or "US").upper(), today)
        reader = read_file(stream, self.kind, context)
        for batch in _batches(reader, self.handler.batch_key):
            self._batch(batch)
            if self.on_progress:
                self.on_progress(self.report.rows, reader.consumed)

    def _batch(self, batch: list[Parsed]) -> None:
        report = self.report
        report.rows += len(batch)
        problems, rows = [], []
        for parsed in batch:
            problems += parsed.problems
            if parsed.data is not None and not self._duplicate(parsed, problems):
                rows.append(parsed.data)
        plan = self.handler.prepare(rows)
        problems += plan.problems
        if not problems and self.writing and report.ok:
            try:
                # A failed write leaves the import's transaction usable; each patient of
                # the batch is replanned once, however many of their rows it saved.
                with transaction.atomic(), replan.once_at_end():
                    self.handler.write(plan, by=self.by, now=self.now)
            except ValidationError as error:
                problems.append(Problem(plan.first_row, "", "", " ".join(error.messages)))
            except IntegrityError as error:
                reason = f"could not be saved ({str(error).splitlines()[0][:200]})"
                problems.append(Problem(plan.first_row, "", "", reason))
        report.created += plan.created
        report.changed += plan.changed
        report.unchanged += plan.unchanged
        if problems:
            self._report(sorted(problems))

    def _duplicate(self, parsed: Parsed, problems: list[Problem]) -> bool:
        key = key_of(parsed.data)
        first = self.seen.setdefault(key, parsed.row)
        if first == parsed.row:
            return False
        said = self.handler.said(key)
        problems.append(
            Problem(parsed.row, "", "", f"{said} is in the file twice (row {first} too)")
        )
        return True

    def _report(self, problems: list[Problem]) -> None:
        self.report.problems += len(problems)
        room = 20 - len(self.report.samples)
        self.report.samples += problems[: max(room, 0)]
        if self.on_problems:
            self.on_problems(problems)


def _batches(rows, batch_key) -> Iterator[list[Parsed]]:
    """BATCH rows at a time, never parting the rows of one record (a patient's
    contacts) when they follow each other."""
    batch: list[Parsed] = []
    for parsed in rows:
        if len(batch) >= BATCH and batch_key(parsed) != batch_key(batch[-1]):
            yield batch
            batch = []
        batch.append(parsed)
    if batch:
        yield batch
