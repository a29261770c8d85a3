"""Admin for prescriptions and their fills."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from carebell.pharmacy import actions
from carebell.pharmacy.models import Fill, Prescription
from carebell.sites.admin_scoping import SITE_FILTER, ScopedAdmin, ScopedTabularInline

_VIEW = "sites.view_patients"
_EDIT = "sites.edit_patients"
_STEP_TIMES = (
    "received_at",
    "insurance_approved_at",
    "verified_for_fill_at",
    "label_printed_at",
    "ready_at",
    "picked_up_at",
    "returned_to_stock_at",
)


class FillInline(ScopedTabularInline):
    model = Fill
    site_path = "prescription__site"
    fields = ("fill_number", "filled_on", "days_supply", "step", *_STEP_TIMES)
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


@admin.register(Prescription)
class PrescriptionAdmin(ScopedAdmin):
    list_display = (
        "rx_number",
        "patient",
        "drug_name",
        "dea_schedule",
        "is_maintenance",
        "refills_remaining",
        "status",
        "site",
    )
    list_filter = ("status", "dea_schedule", "is_maintenance", SITE_FILTER)
    search_fields = ("rx_number", "drug_name", "ndc", "patient__last_name", "patient__first_name")
    list_select_related = ("patient", "site")
    raw_id_fields = ("patient",)
    inlines = (FillInline,)
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT

    def save_formset(self, request, form, formset, change) -> None:
        super().save_formset(request, form, formset, change)
        for fill in formset.new_objects + [obj for obj, _ in formset.changed_objects]:
            if isinstance(fill, Fill):
                actions.fill_changed(fill, now=timezone.now())


@admin.register(Fill)
class FillAdmin(ScopedAdmin):
    site_path = "prescription__site"
    list_display = ("prescription", "fill_number", "filled_on", "step", "ready_at", "picked_up_at")
    list_filter = ("step",)
    search_fields = ("prescription__rx_number", "prescription__patient__last_name")
    list_select_related = ("prescription",)
    raw_id_fields = ("prescription",)
    date_hierarchy = "filled_on"
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        actions.fill_changed(obj, now=timezone.now())
