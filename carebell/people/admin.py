"""Admin for patients, their contacts, contact points, preferences and consent."""

from __future__ import annotations

from django.contrib import admin

from carebell.people.models import (
    ConsentRecord,
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


class PeopleAdmin(ScopedAdmin):
    staff_view_permission = _VIEW
    staff_change_permission = _EDIT


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


@admin.register(VerificationCode)
class VerificationCodeAdmin(AppendOnlyAdmin):
    site_path = "contact_point__contact__patient__site"
    list_display = ("contact_point", "address", "created_at", "expires_at", "used_at")
    search_fields = ("address",)
    exclude = ("code_hash",)
    staff_view_permission = _VIEW
