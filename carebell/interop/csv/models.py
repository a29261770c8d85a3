"""An import started from the staff app: its file, progress, outcome and report."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carebell.interop.csv.columns import FileKind
from carebell.sites.models import Site


class ImportJob(models.Model):
    """One uploaded file: checked (a dry run) when uploaded, applied when staff say
    so. The file is kept under the data dir until the job is applied."""

    class Status(models.TextChoices):
        CHECKING = "checking", "checking"
        CHECKED = "checked", "ready to apply"
        REJECTED = "rejected", "has problems"
        APPLYING = "applying", "applying"
        DONE = "done", "applied"
        FAILED = "failed", "not applied"

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=[(k.value, k.value) for k in FileKind])
    file_name = models.CharField(max_length=200, help_text="As uploaded.")
    stored_as = models.CharField(max_length=300, blank=True, help_text="Under the data dir.")
    size = models.PositiveBigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.CHECKING)
    bytes_done = models.PositiveBigIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    rows = models.PositiveIntegerField(default=0)
    created = models.PositiveIntegerField(default=0)
    changed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    problem_count = models.PositiveIntegerField(default=0)
    outcome = models.TextField(blank=True, help_text="What happened, in a sentence.")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["site", "created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} import {self.pk}"

    @property
    def is_running(self) -> bool:
        return self.status in (self.Status.CHECKING, self.Status.APPLYING)


class ImportProblem(models.Model):
    """One row's problem in a job's report."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="problems")
    row = models.PositiveIntegerField()
    column = models.CharField(max_length=64, blank=True)
    value = models.CharField(max_length=200, blank=True)
    reason = models.TextField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"
