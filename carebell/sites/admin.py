"""Admin for organizations, sites and their settings, departments and staff access."""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from carebell.sites import actions as site_actions
from carebell.sites.admin_scoping import (
    SITE_FILTER,
    SITE_ITSELF,
    AppendOnlyAdmin,
    ScopedAdmin,
    ScopedStackedInline,
    ScopedTabularInline,
    related_only,
)
from carebell.sites.models import (
    DeliverySettings,
    Department,
    Organization,
    ReviewLink,
    SenderIdentity,
    Site,
    SiteSenderNumber,
    StaffMembership,
)
from carebell.sites.setup import set_up_site

_VIEW = "sites.view_patients"
_SETTINGS = "sites.edit_delivery_settings"


class DeliverySettingsInline(ScopedStackedInline):
    model = DeliverySettings
    can_delete = False
    staff_view_permission = "sites.view_automated_messages"
    staff_change_permission = _SETTINGS


class DepartmentInline(ScopedTabularInline):
    model = Department
    fields = ("name", "email")
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS


# A review page typed without a scheme is an https page (and Django 6's default).
_HTTPS_URLS = {models.URLField: {"assume_scheme": "https"}}


class ReviewLinkInline(ScopedTabularInline):
    model = ReviewLink
    fields = ("label", "url", "is_default")
    formfield_overrides = _HTTPS_URLS
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS


class SiteSenderNumberInline(ScopedTabularInline):
    model = SiteSenderNumber
    fields = ("number",)
    verbose_name_plural = "sender numbers (of the site's Messaging Service)"
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS


@admin.register(Organization)
class OrganizationAdmin(ScopedAdmin):
    site_path = "sites"
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    staff_view_permission = _VIEW


@admin.register(Site)
class SiteAdmin(ScopedAdmin):
    site_path = SITE_ITSELF
    list_display = ("name", "organization", "kind", "time_zone", "phone")
    list_filter = ("kind", related_only("organization"))
    search_fields = ("name", "organization__name", "phone")
    list_select_related = ("organization",)
    inlines = (DeliverySettingsInline, SiteSenderNumberInline, DepartmentInline, ReviewLinkInline)
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        # After the inlines, so settings entered on the form win over the defaults.
        set_up_site(form.instance)

    # The site and its delivery settings are saved through carebell.sites.actions,
    # which replans the site's pending messages in the admin's transaction.
    def save_model(self, request, obj, form, change) -> None:
        site_actions.save_site(obj, by=request.user)

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not DeliverySettings:
            super().save_formset(request, form, formset, change)
            return
        for row in formset.save(commit=False):
            site_actions.save_delivery_settings(row, by=request.user)


@admin.register(DeliverySettings)
class DeliverySettingsAdmin(ScopedAdmin):
    list_display = (
        "site",
        "email_sms_window_start",
        "email_sms_window_end",
        "cancellation_mode",
        "combine_siblings",
        "require_opt_in",
    )
    list_filter = ("cancellation_mode", "combine_siblings", "require_opt_in", "only_verified")
    search_fields = ("site__name",)
    list_select_related = ("site",)
    staff_view_permission = "sites.view_automated_messages"
    staff_change_permission = _SETTINGS

    def save_model(self, request, obj, form, change) -> None:
        site_actions.save_delivery_settings(obj, by=request.user)

    # save_delivery_settings writes the audit entry (field names only).
    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None


@admin.register(Department)
class DepartmentAdmin(ScopedAdmin):
    list_display = ("name", "site", "email")
    list_filter = (SITE_FILTER,)
    search_fields = ("name", "site__name", "email")
    list_select_related = ("site",)
    filter_horizontal = ("members",)
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS


@admin.register(StaffMembership)
class StaffMembershipAdmin(ScopedAdmin):
    list_display = ("user", "site", "created_at")
    list_filter = (SITE_FILTER,)
    search_fields = ("user__username", "site__name")
    list_select_related = ("user", "site")


@admin.register(ReviewLink)
class ReviewLinkAdmin(ScopedAdmin):
    formfield_overrides = _HTTPS_URLS
    list_display = ("label", "site", "url", "is_default")
    list_filter = ("is_default", SITE_FILTER)
    search_fields = ("label", "url", "site__name")
    list_select_related = ("site",)
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS


@admin.register(SiteSenderNumber)
class SiteSenderNumberAdmin(ScopedAdmin):
    list_display = ("number", "site")
    list_filter = (SITE_FILTER,)
    search_fields = ("number", "site__name")
    list_select_related = ("site",)
    staff_view_permission = _VIEW
    staff_change_permission = _SETTINGS


@admin.register(SenderIdentity)
class SenderIdentityAdmin(AppendOnlyAdmin):
    """Which organization holds each sender: kept from the sites' settings, for
    superusers to read (staff never see other organizations' senders)."""

    site_path = None
    list_display = ("value", "organization")
    search_fields = ("value", "organization__name")
    list_select_related = ("organization",)
