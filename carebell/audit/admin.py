"""Admin for the audit log: readable by those allowed, never changed."""

from __future__ import annotations

from django.contrib import admin

from carebell.audit.models import AuditEvent
from carebell.sites.admin_scoping import AppendOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(AppendOnlyAdmin):
    site_path = "site_id"
    list_display = ("at", "actor_label", "action", "object_type", "object_id", "site_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor_label", "object_type", "object_id")
    date_hierarchy = "at"
    staff_view_permission = "sites.view_audit"
