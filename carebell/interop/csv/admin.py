"""CSV imports in the admin, for those who may import data: each job and its
problems, read-only (a job is made by an upload in the staff app and run by
carebell.interop.csv.jobs). A problem quotes a cell of the file, patient data: it is
shown on the problem's page only, and looking at one is audited."""

from django.contrib import admin

from carebell.interop.csv.models import ImportJob, ImportProblem
from carebell.sites.admin_scoping import SITE_FILTER, AppendOnlyAdmin

_IMPORT = "sites.import_data"


@admin.register(ImportJob)
class ImportJobAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "kind", "file_name", "status", "rows", "created", "changed",
                    "problem_count", "site")  # fmt: skip
    list_filter = ("status", "kind", SITE_FILTER)
    search_fields = ("file_name",)
    list_select_related = ("site",)
    date_hierarchy = "created_at"
    staff_view_permission = _IMPORT


@admin.register(ImportProblem)
class ImportProblemAdmin(AppendOnlyAdmin):
    site_path = "job__site"
    list_display = ("job", "row", "column", "reason")
    search_fields = ("column", "reason")
    list_select_related = ("job",)
    staff_view_permission = _IMPORT

    def audits_access(self) -> bool:
        return True
