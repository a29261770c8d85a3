"""CSV import (SPEC §9): upload a file of patients, appointments, prescriptions or
fills for the current site; it is checked at once (a dry run) and its report shows
every row's problem; a clean file is applied, all or nothing, with a progress bar.
Needs import_data. Jobs of another site answer 404; every upload, check, apply and
report view is audited."""

from __future__ import annotations

import csv
import io

from django import forms
from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from carebell.audit import trail
from carebell.interop.csv import jobs
from carebell.interop.csv.models import ImportJob
from carebell.interop.csv.rows import COLUMNS, FileKind, template_rows
from carebell.web.staff import guard

PAGE_SIZE = 100
#: The largest upload taken (CAREBELL_IMPORT_MAX_BYTES in the settings overrides).
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
KIND_LABELS = {
    FileKind.PATIENTS: gettext_lazy("Patients with their contacts"),
    FileKind.APPOINTMENTS: gettext_lazy("Appointments"),
    FileKind.PRESCRIPTIONS: gettext_lazy("Prescriptions"),
    FileKind.FILLS: gettext_lazy("Fills"),
}


def max_bytes() -> int:
    return int(getattr(settings, "CAREBELL_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


def _size(count: int) -> str:
    return f"{count / 1024 / 1024:.0f} MB" if count >= 1024 * 1024 else f"{count // 1024} KB"


class UploadForm(forms.Form):
    kind = forms.ChoiceField(
        label=gettext_lazy("What the file holds"),
        choices=[(k.value, label) for k, label in KIND_LABELS.items()],
    )
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy("UTF-8, separated by commas, the column names on the first line."),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > max_bytes():
            raise forms.ValidationError(
                _(
                    "The file is %(size)s; the largest taken is %(limit)s. "
                    "Split it into smaller files."
                )
                % {"size": _size(upload.size), "limit": _size(max_bytes())}
            )
        if upload.size == 0:
            raise forms.ValidationError(_("The file is empty."))
        return upload


def _job(request: HttpRequest, job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(site=request.site, pk=job_id).first()
    if job is None:
        raise Http404
    return jobs.settle_stale(job, timezone.now())


def _too_large(request: HttpRequest) -> bool:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > max_bytes() + 64 * 1024
    except ValueError:
        return False


@guard.requires("import_data")
def import_page(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and _too_large(request):
        refusal = _("The file is larger than %(limit)s. Split it into smaller files.") % {
            "limit": _size(max_bytes())
        }
        context = {**_page(request, UploadForm()), "refusal": refusal}
        return render(request, "staff/import.html", context, status=413)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        now = timezone.now()
        job = jobs.create_job(
            request.site, form.cleaned_data["kind"], form.cleaned_data["file"], request.user, now
        )
        trail.record(request.user, "upload", job, site_id=request.site.pk,
                     detail={"kind": job.kind, "size": job.size}, at=now)  # fmt: skip
        transaction.on_commit(lambda: jobs.launch(job.pk, jobs.CHECK))
        return redirect("staff:import-job", job_id=job.pk)
    return render(request, "staff/import.html", _page(request, form))


def _page(request: HttpRequest, form: UploadForm) -> dict:
    recent = ImportJob.objects.filter(site=request.site).select_related("created_by")[:10]
    kinds = [{"kind": k.value, "label": KIND_LABELS[k], "columns": COLUMNS[k]} for k in FileKind]
    return {"form": form, "recent": recent, "kinds": kinds, "limit": _size(max_bytes())}


@guard.requires("import_data")
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _job(request, job_id)
    problems = job.problems.all()
    after = request.GET.get("after", "")
    if after.isdigit():
        problems = problems.filter(id__gt=int(after))
    page = list(problems[: PAGE_SIZE + 1])
    next_url = ""
    if len(page) > PAGE_SIZE:
        page = page[:PAGE_SIZE]
        next_url = f"?after={page[-1].pk}"
    if page:  # the rows' values are patient data; a page without problems shows none
        trail.record(request.user, "view", job, site_id=request.site.pk,
                     detail={"page": "import report", "problems": len(page)})  # fmt: skip
    rows, done = jobs.progress_of(job)
    context = {
        "job": job,
        "kind_label": KIND_LABELS[FileKind(job.kind)],
        "problems": page,
        "next_url": next_url,
        "first_url": "?" if after else "",
        "percent": _percent(job, done),
        "rows_read": rows,
        "can_apply": job.status == ImportJob.Status.CHECKED,
        "truncated": not next_url and job.problem_count > job.problems.count(),
    }
    return render(request, "staff/import_job.html", context)


def _percent(job: ImportJob, done: int) -> int:
    if not job.is_running:
        return 100
    return min(99, int(100 * done / job.size)) if job.size else 0


@guard.requires("import_data")
def import_progress(request: HttpRequest, job_id: int) -> JsonResponse:
    """What the page's progress bar polls (not audited: it shows no patient data)."""
    job = _job(request, job_id)
    rows, done = jobs.progress_of(job)
    return JsonResponse({
        "status": job.status, "running": job.is_running, "rows": rows,
        "percent": _percent(job, done),
    })  # fmt: skip


@guard.requires("import_data")
@require_POST
def import_apply(request: HttpRequest, job_id: int) -> HttpResponse:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(site=request.site, pk=job_id).first()
        if job is None:
            raise Http404
        if job.status != ImportJob.Status.CHECKED:
            from django.contrib import messages

            messages.error(request, _("This import cannot be applied: it is %(status)s.")
                           % {"status": job.get_status_display()})  # fmt: skip
            return redirect("staff:import-job", job_id=job.pk)
        job.status, job.rows_done, job.bytes_done = ImportJob.Status.APPLYING, 0, 0
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["status", "rows_done", "bytes_done", "heartbeat_at"])
        trail.record(request.user, "apply", job, site_id=request.site.pk, detail={"kind": job.kind})
        transaction.on_commit(lambda: jobs.launch(job.pk, jobs.APPLY))
    return redirect("staff:import-job", job_id=job.pk)


@guard.requires("import_data")
def import_template(request: HttpRequest, kind: str) -> HttpResponse:
    """A template CSV: the kind's columns and an example row."""
    if kind not in FileKind._value2member_map_:
        raise Http404
    header, example = template_rows(FileKind(kind))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerow(example)
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="carebell-{kind}.csv"'
    return response
