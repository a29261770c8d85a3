"""Admin for patients, their contacts, contact points, preferences and consent."""

from __future__ import annotations

from django.contrib import admin

from carebell.people import actions
from carebell.people.models import (
    ConsentRecord,
    ConsentWording,
    Contact,
    ContactPoint,
    ContactPreference,
    OptOutEvent,
    Patient,
    VerificationCode,
)
from carebell.sites.admin_scoping import (
    SITE_FILTER,
    AppendOnlyAdmin,
    AppendOnlyTabularInline,
    ScopedAdmin,
    ScopedTabularInline,
)

_VIEW = "sites.view_patients"
_EDIT = "sites.edit_patients"
_CONTACT_SITE = "contact__patient__site"


#: The entry points the admin saves and deletes through: they validate, replan the
#: patient's pending messages in the admin's transaction and write the audit log.
_SAVE = {
    Patient: actions.save_patient,
    Contact: actions.save_contact,
    ContactPoint: actions.save_contact_point,
    ContactPreference: actions.save_preference,
}
_REMOVE = {
    Contact: actions.remove_contact,
    ContactPoint: actions.remove_contact_point,
    ContactPreference: actions.remove_preference,
}


class PeopleAdmin(ScopedAdmin):
    """Every save and delete, of the object and of its inlines, goes through
    carebell.people.actions — the door any other door uses too."""

    staff_view_permission = _VIEW
    staff_change_permission = _EDIT

    def save_model(self, request, obj, form, change) -> None:
        _SAVE[type(obj)](obj, by=request.user)

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model not in _SAVE:
            super().save_formset(request, form, formset, change)
            return
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            _REMOVE[type(obj)](obj, by=request.user)
        for obj in instances:
            _SAVE[type(obj)](obj, by=request.user)
        formset.save_m2m()

    def delete_model(self, request, obj) -> None:
        if type(obj) in _REMOVE:
            _REMOVE[type(obj)](obj, by=request.user)
        else:
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)

    # The entry points write the audit log (names of the fields changed, never values).
    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletions(self, request, queryset):
        if self.model in _REMOVE:
            return []
        return super().log_deletions(request, queryset)


class ContactInline(ScopedTabularInline):
    model = Contact
    site_path = "patient__site"
    fields = (
        "position",
        "relationship",
        "first_name",
        "last_name",
        "authority",
        "end_date",
        "resides_with_patient",
        "language",
    )
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


class ContactPointInline(ScopedTabularInline):
    model = ContactPoint
    site_path = _CONTACT_SITE
    fields = (
        "kind",
        "value",
        "is_valid",
        "verified_at",
        "opted_out_sms",
        "opted_out_call",
        "opted_out_email",
        "consent_sms",
        "consent_call",
    )
    readonly_fields = ("verified_at", "consent_sms", "consent_call")
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


class ContactPreferenceInline(ScopedTabularInline):
    model = ContactPreference
    site_path = _CONTACT_SITE
    fields = ("category", "value")
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


class ConsentRecordInline(AppendOnlyTabularInline):
    model = ConsentRecord
    fields = ("channel", "action", "source", "recorded_at", "captured_by", "captured_by_system")
    readonly_fields = fields
    show_change_link = True
    staff_view_permission = _VIEW


@admin.register(Patient)
class PatientAdmin(PeopleAdmin):
    list_display = ("last_name", "first_name", "birth_date", "site", "language", "is_active")
    list_filter = (SITE_FILTER, "language", "is_active", "source")
    search_fields = ("last_name", "first_name", "external_id")
    list_select_related = ("site",)
    inlines = (ContactInline,)


@admin.register(Contact)
class ContactAdmin(PeopleAdmin):
    site_path = "patient__site"
    list_display = (
        "last_name",
        "first_name",
        "position",
        "relationship",
        "authority",
        "end_date",
        "language",
        "patient",
    )
    list_filter = ("relationship", "authority", "language", "resides_with_patient")
    search_fields = ("last_name", "first_name", "patient__last_name", "patient__external_id")
    list_select_related = ("patient",)
    raw_id_fields = ("patient",)
    inlines = (ContactPointInline, ContactPreferenceInline)


@admin.register(ContactPoint)
class ContactPointAdmin(PeopleAdmin):
    site_path = _CONTACT_SITE
    list_display = (
        "value",
        "kind",
        "contact",
        "is_valid",
        "verified_at",
        "opted_out_sms",
        "consent_sms",
    )
    list_filter = ("kind", "is_valid", "opted_out_sms", "opted_out_email", "consent_sms")
    search_fields = ("value", "raw_value", "contact__last_name")
    list_select_related = ("contact",)
    raw_id_fields = ("contact",)
    readonly_fields = ("verified_at", "verified_method", "consent_sms", "consent_call")
    inlines = (ConsentRecordInline,)


@admin.register(ContactPreference)
class ContactPreferenceAdmin(PeopleAdmin):
    site_path = _CONTACT_SITE
    list_display = ("contact", "category", "value")
    list_filter = ("category", "value")
    search_fields = ("contact__last_name", "contact__first_name")
    list_select_related = ("contact",)
    raw_id_fields = ("contact",)


@admin.register(ConsentRecord)
class ConsentRecordAdmin(AppendOnlyAdmin):
    list_display = ("recorded_at", "address", "channel", "action", "source", "site")
    list_filter = ("action", "channel", "source", SITE_FILTER)
    search_fields = ("address",)
    list_select_related = ("site",)
    date_hierarchy = "recorded_at"
    staff_view_permission = _VIEW


@admin.register(OptOutEvent)
class OptOutEventAdmin(AppendOnlyAdmin):
    list_display = ("recorded_at", "address", "channel", "opted_out", "source", "site")
    list_filter = ("opted_out", "channel", "source", SITE_FILTER)
    search_fields = ("address", "detail")
    list_select_related = ("site",)
    date_hierarchy = "recorded_at"
    staff_view_permission = _VIEW


@admin.register(ConsentWording)
class ConsentWordingAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "version", "site", "created_by")
    list_filter = (SITE_FILTER,)
    search_fields = ("version", "wording")
    list_select_related = ("site", "created_by")
    staff_view_permission = _VIEW


@admin.register(VerificationCode)
class VerificationCodeAdmin(AppendOnlyAdmin):
    site_path = "contact_point__contact__patient__site"
    list_display = ("contact_point", "address", "created_at", "expires_at", "used_at")
    search_fields = ("address",)
    exclude = ("code_hash",)
    staff_view_permission = _VIEW
