"""Imports started from the staff app, run off the request in a thread of the web
process: the uploaded file is kept under the data dir, checked (a dry run) at once,
and applied when staff say so; the page polls the job for its progress. The file
(patient data) is deleted as soon as it can no longer be applied: applied, refused
or stopped.

Durable: the apply is one transaction, so a process that dies mid-way writes
nothing; the job it left "applying" stops answering heartbeats and is then marked
not applied (`settle_stale`), with the file still there to apply again. Progress
during an apply is written through a second connection (its own transaction), so
the poll sees it while the import's own transaction is still open; on SQLite, which
would lock on it, the poll reads it from this process's memory.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from functools import partial
from pathlib import Path

from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from carebell.audit import trail
from carebell.interop.csv.ingest import Report, import_csv
from carebell.interop.csv.models import ImportJob, ImportProblem

log = logging.getLogger("carebell.interop.csv")

#: A job whose heartbeat is older than this, and which no thread here runs, died.
STALE = dt.timedelta(minutes=5)
#: Problems kept per job for the report (the count is always exact).
KEPT_PROBLEMS = 20_000
SOURCE = "csv"
CHECK, APPLY = "check", "apply"

_live: set[int] = set()
_progress: dict[int, tuple[int, int]] = {}  # job id → (rows, bytes) read so far


def upload_dir() -> Path:
    path = Path(settings.DATA_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def create_job(site, kind: str, upload, user, now: dt.datetime) -> ImportJob:
    """Keep the uploaded file under the data dir and make its job (to be checked)."""
    name = f"{uuid.uuid4().hex}.csv"
    with (upload_dir() / name).open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return ImportJob.objects.create(
        site=site, kind=kind, file_name=Path(upload.name or "upload.csv").name[:200],
        stored_as=name, size=upload.size or 0, created_by=user, created_at=now,
        heartbeat_at=now,
    )  # fmt: skip


def launch(job_id: int, step: str) -> None:
    """Run `step` of the job in a thread of its own (call after the job committed)."""
    _live.add(job_id)
    threading.Thread(target=_in_thread, args=(job_id, step), daemon=True).start()


def _in_thread(job_id: int, step: str) -> None:
    try:
        run_job(job_id, step)
    finally:
        connection.close()


def run_job(job_id: int, step: str) -> ImportJob:
    """Check or apply the job's file; the job records the outcome whatever happens."""
    _live.add(job_id)
    job = ImportJob.objects.select_related("site", "created_by").get(pk=job_id)
    try:
        report, problems = _run(job, step)
    except Exception as error:  # the job must say it failed; the log names no patient data
        log.exception("CSV import job %s failed (%s)", job_id, type(error).__name__)
        return _finish(job, step, None, [])
    finally:
        _live.discard(job_id)
        _progress.pop(job_id, None)
    return _finish(job, step, report, problems)


#: Waits before trying a step again that met a locked database (SQLite, another
#: writer): the step is all or nothing, so trying again is safe.
_RETRY_WAITS = (0.2, 0.5, 1, 2, 4)


def _run(job: ImportJob, step: str) -> tuple[Report, list]:
    for wait in (*_RETRY_WAITS, None):
        problems: list = []
        try:
            with (upload_dir() / job.stored_as).open("rb") as stream:
                report = import_csv(
                    job.kind, stream, job.site, by=job.created_by, source=SOURCE,
                    dry_run=step == CHECK, on_problems=partial(_keep, problems),
                    on_progress=lambda rows, done: _heartbeat(job.pk, rows, done),
                )  # fmt: skip
            return report, problems
        except OperationalError:
            if wait is None or connection.vendor != "sqlite":
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")


def _keep(problems: list, found: list) -> None:
    problems.extend(found[: max(KEPT_PROBLEMS - len(problems), 0)])


def _heartbeat(job_id: int, rows: int, done: int) -> None:
    _progress[job_id] = (rows, done)
    update = {"rows_done": rows, "bytes_done": done, "heartbeat_at": timezone.now()}
    if not connection.in_atomic_block:
        with contextlib.suppress(OperationalError):  # SQLite busy: the next batch tells
            ImportJob.objects.filter(pk=job_id).update(**update)
    elif connection.vendor == "postgresql":
        writer = threading.Thread(target=_write_elsewhere, args=(job_id, update))
        writer.start()
        writer.join()


def _write_elsewhere(job_id: int, update: dict) -> None:
    try:
        ImportJob.objects.filter(pk=job_id).update(**update)
    finally:
        connection.close()


def _finish(job: ImportJob, step: str, report: Report | None, problems: list) -> ImportJob:
    for wait in (*_RETRY_WAITS, None):
        try:
            return _record(job, step, report, problems)
        except OperationalError:  # SQLite's lock held by a request for a moment
            if wait is None:
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")


def _record(job: ImportJob, step: str, report: Report | None, problems: list) -> ImportJob:
    now = timezone.now()
    Status = ImportJob.Status
    with transaction.atomic():
        ImportProblem.objects.filter(job=job).delete()
        ImportProblem.objects.bulk_create(
            [ImportProblem(job=job, row=p.row, column=p.column[:64], value=p.value[:200],
                           reason=p.reason) for p in problems],
            batch_size=1000,
        )  # fmt: skip
        job.finished_at = job.heartbeat_at = now
        if report is None:
            job.status = Status.FAILED
            job.outcome = (
                "carebell could not finish this import (an internal error); nothing was written."
            )
        else:
            _take(job, report)
            job.status, job.outcome = _outcome(step, report)
        if job.status != Status.CHECKED:  # only a checked file may still be applied
            (upload_dir() / job.stored_as).unlink(missing_ok=True)
        job.save()
        detail = {"step": step, "status": job.status, **(report.as_dict() if report else {})}
        trail.record(job.created_by, "import", job, site_id=job.site_id, detail=detail, at=now)
    return job


def _take(job: ImportJob, report: Report) -> None:
    job.rows = job.rows_done = report.rows
    job.created, job.changed, job.unchanged = report.created, report.changed, report.unchanged
    job.problem_count = report.problems


def _outcome(step: str, report: Report) -> tuple[str, str]:
    Status = ImportJob.Status
    counts = f"{report.created} new, {report.changed} changed, {report.unchanged} unchanged"
    if report.file_problem:
        return Status.REJECTED, report.file_problem
    if report.problems:
        status = Status.REJECTED if step == CHECK else Status.FAILED
        return status, (
            f"{report.problems} problem{'s' if report.problems != 1 else ''} in "
            f"{report.rows} rows: nothing was written. Correct the file and upload it again."
        )
    if step == CHECK:
        return Status.CHECKED, f"{report.rows} rows checked, no problems: {counts} when applied."
    return Status.DONE, f"Imported {report.rows} rows: {counts}."


def progress_of(job: ImportJob) -> tuple[int, int]:
    """(rows, bytes) read so far by the running step."""
    rows, done = _progress.get(job.pk, (0, 0))
    return max(rows, job.rows_done), max(done, job.bytes_done)


def settle_stale(job: ImportJob, now: dt.datetime) -> ImportJob:
    """A job left running by a process that died: say so (nothing was written)."""
    if not job.is_running or job.pk in _live:
        return job
    if (job.heartbeat_at or job.created_at) > now - STALE:
        return job
    stopped = "This import stopped before it finished (carebell restarted?): nothing was written."
    if job.status == ImportJob.Status.APPLYING:  # the check stands: it may be applied again
        job.status, job.outcome = ImportJob.Status.CHECKED, f"{stopped} Apply it again."
    else:
        job.status, job.outcome = ImportJob.Status.FAILED, f"{stopped} Upload the file again."
        (upload_dir() / job.stored_as).unlink(missing_ok=True)
    job.finished_at = now
    job.save(update_fields=["status", "outcome", "finished_at"])
    return job
