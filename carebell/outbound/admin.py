"""Webhook endpoints and their deliveries in the admin, for those who manage a
site's integrations.

Endpoints are made, changed and rotated in the staff app through
carebell.outbound.endpoints, which checks the URL (no private addresses) and shows
a new secret once; here they are read, and may be switched off or a delivery sent
again through the same entry points. Secrets are never shown. Deliveries and their
attempts are the record of what was sent: read-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from carebell.outbound import endpoints
from carebell.outbound.models import DeliveryAttemptLog, EventDelivery, WebhookEndpoint
from carebell.sites.admin_scoping import SITE_FILTER, AppendOnlyAdmin, AppendOnlyTabularInline

_INTEGRATIONS = "sites.manage_integrations"


class IntegrationAdmin(AppendOnlyAdmin):
    staff_view_permission = _INTEGRATIONS

    def has_integrations_permission(self, request) -> bool:
        return request.user.has_perm(_INTEGRATIONS)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(IntegrationAdmin):
    list_display = ("url", "site", "enabled", "disabled_reason", "updated_at")
    list_filter = ("enabled", "disabled_reason", SITE_FILTER)
    search_fields = ("url", "description")
    list_select_related = ("site",)
    exclude = ("secret", "previous_secret")
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ("switch_off",)

    @admin.action(description="Switch off selected endpoints", permissions=["integrations"])
    def switch_off(self, request, queryset) -> None:
        for endpoint in queryset.filter(enabled=True):
            endpoints.disable_endpoint(endpoint, by=request.user)
        self.message_user(request, "The selected endpoints are switched off.")


class DeliveryAttemptLogInline(AppendOnlyTabularInline):
    model = DeliveryAttemptLog
    site_path = "delivery__endpoint__site"
    fields = ("number", "started_at", "duration_ms", "status_code", "outcome", "error")
    readonly_fields = fields
    show_change_link = False
    staff_view_permission = _INTEGRATIONS


@admin.register(EventDelivery)
class EventDeliveryAdmin(IntegrationAdmin):
    site_path = "endpoint__site"
    list_display = ("created_at", "endpoint", "event", "status", "attempts", "due_at",
                    "last_status_code")  # fmt: skip
    list_filter = ("status",)
    search_fields = ("message_id", "event__event_type")
    list_select_related = ("endpoint", "event")
    inlines = (DeliveryAttemptLogInline,)
    actions = ("send_again",)

    @admin.action(description="Send selected deliveries again", permissions=["integrations"])
    def send_again(self, request, queryset) -> None:
        again = sum(
            endpoints.resend(d, by=request.user) for d in queryset.select_related("endpoint")
        )
        self.message_user(request, f"{again} delivery(ies) will be sent again.")


@admin.register(DeliveryAttemptLog)
class DeliveryAttemptLogAdmin(IntegrationAdmin):
    site_path = "delivery__endpoint__site"
    list_display = ("delivery", "number", "started_at", "status_code", "outcome", "duration_ms")
    list_filter = ("outcome",)
    search_fields = ("delivery__message_id",)
    list_select_related = ("delivery",)
