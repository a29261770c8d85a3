"""Admin for appointments, cancellation requests and recalls."""

from __future__ import annotations

from django.contrib import admin
from django.utils import timezone

from carebell.appointments import actions
from carebell.appointments.models import Appointment, CancellationRequest, Recall
from carebell.sites.admin_scoping import SITE_FILTER, ScopedAdmin, ScopedTabularInline

_VIEW = "sites.view_patients"
_EDIT = "sites.edit_patients"


class CancellationRequestInline(ScopedTabularInline):
    model = CancellationRequest
    site_path = "appointment__site"
    fields = ("received_at", "via", "accepted", "reason", "handled_at", "handled_by")
    readonly_fields = ("received_at", "via", "accepted", "reason")
    raw_id_fields = ("handled_by",)
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


@admin.register(Appointment)
class AppointmentAdmin(ScopedAdmin):
    list_display = (
        "starts_at",
        "patient",
        "status",
        "appointment_type",
        "provider_name",
        "location_name",
        "site",
    )
    list_filter = ("status", SITE_FILTER, "appointment_type", "source")
    search_fields = ("external_id", "patient__last_name", "patient__first_name", "provider_name")
    list_select_related = ("patient", "site")
    raw_id_fields = ("patient",)
    date_hierarchy = "starts_at"
    inlines = (CancellationRequestInline,)
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT

    def save_model(self, request, obj, form, change) -> None:
        # Replanned in the admin's transaction: no reminder for the old time survives.
        previous = Appointment.objects.filter(pk=obj.pk).first() if change else None
        super().save_model(request, obj, form, change)
        actions.appointment_saved(obj, previous, now=timezone.now())


@admin.register(CancellationRequest)
class CancellationRequestAdmin(ScopedAdmin):
    site_path = "appointment__site"
    list_display = ("received_at", "appointment", "via", "accepted", "reason", "handled_at")
    list_filter = ("accepted", "via")
    search_fields = ("appointment__external_id", "appointment__patient__last_name")
    list_select_related = ("appointment",)
    raw_id_fields = ("appointment", "contact", "handled_by")
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


@admin.register(Recall)
class RecallAdmin(ScopedAdmin):
    list_display = ("due_on", "patient", "reason", "completed_at", "site")
    list_filter = (SITE_FILTER, "reason")
    search_fields = ("reason", "patient__last_name", "patient__first_name")
    list_select_related = ("patient", "site")
    raw_id_fields = ("patient",)
    date_hierarchy = "due_on"
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT
