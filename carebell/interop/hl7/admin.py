"""HL7 feeds in the admin: senders (manage_integrations), and the message log and
the order of what was applied, which are history and cannot be added, changed or
deleted by hand. A message's raw bytes and its ACK hold patient data and are not
shown."""

from django.contrib import admin

from carebell.interop.hl7.models import Hl7Applied, Hl7Message, Hl7Sender
from carebell.sites.admin_scoping import SITE_FILTER, AppendOnlyAdmin, ScopedAdmin

_INTEGRATIONS = "sites.manage_integrations"


@admin.register(Hl7Sender)
class Hl7SenderAdmin(ScopedAdmin):
    list_display = ("sending_application", "sending_facility", "site", "patient_source", "enabled")
    staff_view_permission = _INTEGRATIONS
    staff_change_permission = _INTEGRATIONS


@admin.register(Hl7Message)
class Hl7MessageAdmin(AppendOnlyAdmin):
    list_display = ("received_at", "sender", "control_id", "message_type", "outcome", "resent")
    list_filter = ("outcome", "via")
    search_fields = ("control_id", "sender")
    exclude = ("raw", "ack")
    readonly_fields = ("received_at", "via", "peer", "sender", "control_id", "digest",
                       "message_type", "sent_at", "site", "outcome", "reason", "resent",
                       "last_resent_at")  # fmt: skip
    staff_view_permission = _INTEGRATIONS


@admin.register(Hl7Applied)
class Hl7AppliedAdmin(AppendOnlyAdmin):
    list_display = ("entity", "external_id", "source", "sent_at", "site")
    list_filter = ("entity", SITE_FILTER)
    search_fields = ("external_id", "source")
    list_select_related = ("site",)
    staff_view_permission = _INTEGRATIONS
