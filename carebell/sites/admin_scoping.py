"""Tenancy in the Django admin: staff see and choose only rows of the sites granted
to them through StaffMembership; superusers see everything.

Each admin names the path from its model to a Site (`site_path`, e.g. "site",
"patient__site", "message__site"); the same path limits every foreign-key choice
that points at another scoped model, so a staff member can neither list nor link to
another organization's rows.

Django's model permissions are for administrators. Staff hold carebell's role
permissions (sites.view_patients, sites.view_queue, …, SPEC §10), so each admin also
names which of those lets a staff member view it and which lets them change it.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from carebell.audit import trail as audit_trail
from carebell.sites import access
from carebell.sites.access import SITE_ITSELF, granted_site_ids
from carebell.sites.models import Organization, Site, StaffMembership


def scope_to_user(queryset: QuerySet, user, site_path: str | None) -> QuerySet:
    """Rows of `queryset` the user may see (carebell.sites.access.scope, the one rule)."""
    return access.scope(queryset, user, site_path)


#: Where the site lies for models that are not registered with a scoped admin.
_UNREGISTERED_PATHS: dict[type[Model], str] = {
    Site: SITE_ITSELF,
    Organization: "sites",
}


class SiteScopedMixin:
    """Mix into ModelAdmin or InlineModelAdmin. Set `site_path`, and the carebell
    permissions that grant staff viewing (`staff_view_permission`) and changing
    (`staff_change_permission`); None leaves the model to Django's permissions."""

    site_path: str | None = "site"
    staff_view_permission: str | None = None
    staff_change_permission: str | None = None

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return scope_to_user(super().get_queryset(request), request.user, self.site_path)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):
        if "queryset" not in kwargs:
            related = db_field.remote_field.model
            kwargs["queryset"] = self._choices_for(related, request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs):
        if "queryset" not in kwargs:
            kwargs["queryset"] = self._choices_for(db_field.remote_field.model, request)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _choices_for(self, related: type[Model], request: HttpRequest) -> QuerySet:
        queryset = related._default_manager.all()
        user = request.user
        if user.is_superuser:
            return queryset
        if related is get_user_model():
            colleagues = StaffMembership.objects.filter(site_id__in=granted_site_ids(user))
            return queryset.filter(pk__in=colleagues.values("user_id"))
        return scope_to_user(queryset, user, self._site_path_of(related))

    def _site_path_of(self, model: type[Model]) -> str | None:
        registered = self.admin_site._registry.get(model)
        if isinstance(registered, SiteScopedMixin):
            return registered.site_path
        return _UNREGISTERED_PATHS.get(model)

    def _has_staff_permission(self, request: HttpRequest, permission: str | None) -> bool:
        return bool(permission) and request.user.has_perm(permission)

    def has_module_permission(self, request: HttpRequest) -> bool:
        return super().has_module_permission(request) or self._has_staff_permission(
            request, self.staff_view_permission
        )

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return (
            super().has_view_permission(request, obj)
            or self._has_staff_permission(request, self.staff_view_permission)
            or self._has_staff_permission(request, self.staff_change_permission)
        )

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_change_permission(request, obj) or self._has_staff_permission(
            request, self.staff_change_permission
        )

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return super().has_add_permission(request, *args) or self._has_staff_permission(
            request, self.staff_change_permission
        )


PATIENT_DATA_PERMISSIONS = frozenset(
    {"sites.view_patients", "sites.view_queue", "sites.work_inbox"}
)


class AuditedAdminMixin:
    """Every change made in the admin, and every look at patient data, goes to the
    append-only audit log (SPEC §10) instead of Django's admin history, whose entries
    would carry people's names."""

    def audits_access(self) -> bool:
        """Views are recorded for the models that hold patient data or messages."""
        return getattr(self, "staff_view_permission", None) in PATIENT_DATA_PERMISSIONS

    def log_addition(self, request, obj, message):
        return audit_trail.record(request.user, "create", obj, detail=_fields(message))

    def log_change(self, request, obj, message):
        return audit_trail.record(request.user, "change", obj, detail=_fields(message))

    def log_deletion(self, request, obj, object_repr):
        return audit_trail.record(request.user, "delete", obj)

    def log_deletions(self, request, queryset):
        return [audit_trail.record(request.user, "delete", obj) for obj in queryset]

    def changelist_view(self, request, extra_context=None):
        if self.audits_access():
            audit_trail.record(
                request.user,
                "list",
                object_type=self.model._meta.label_lower,
                detail={"searched": bool(request.GET.get("q")), "page": request.GET.get("p", "0")},
            )
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if self.audits_access() and request.method == "GET":
            obj = self.get_object(request, object_id)
            if obj is not None:
                audit_trail.record(request.user, "view", obj)
        return super().change_view(request, object_id, form_url, extra_context)


def _fields(message) -> dict:
    """Which fields changed, from the admin's change message (names, not values)."""
    changed = []
    for item in message if isinstance(message, list) else []:
        for part in item.values():
            changed += part.get("fields", []) if isinstance(part, dict) else []
    return {"fields": changed} if changed else {}


class ScopedAdmin(AuditedAdminMixin, SiteScopedMixin, admin.ModelAdmin):
    """A ModelAdmin scoped to the staff member's sites, audited."""

    list_per_page = 50
    # Counting every row of a million-patient table on each page is wasted work.
    show_full_result_count = False


class ScopedTabularInline(SiteScopedMixin, admin.TabularInline):
    extra = 0
    show_change_link = True


class ScopedStackedInline(SiteScopedMixin, admin.StackedInline):
    extra = 0
    show_change_link = True


class AppendOnlyMixin:
    """History that must never be rewritten (consent, opt-outs, audit, the outbox's
    trail): visible, never added, changed or deleted through the admin."""

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class AppendOnlyAdmin(AppendOnlyMixin, ScopedAdmin):
    pass


class AppendOnlyTabularInline(AppendOnlyMixin, ScopedTabularInline):
    pass


def related_only(path: str) -> tuple[str, type[admin.RelatedOnlyFieldListFilter]]:
    """A list filter offering only related rows present in the (scoped) changelist, so
    the filter sidebar never names another organization's sites."""
    return (path, admin.RelatedOnlyFieldListFilter)


SITE_FILTER = related_only("site")
