"""HL7 feeds in the admin: senders (manage_integrations) and the message log, which
is history and cannot be added, changed or deleted by hand."""

from django.contrib import admin

from carebell.interop.hl7.models import Hl7Message, Hl7Sender
from carebell.sites.admin_scoping import AppendOnlyAdmin, ScopedAdmin


@admin.register(Hl7Sender)
class Hl7SenderAdmin(ScopedAdmin):
    list_display = ("sending_application", "sending_facility", "site", "patient_source", "enabled")
    staff_view_permission = "sites.manage_integrations"
    staff_change_permission = "sites.manage_integrations"


@admin.register(Hl7Message)
class Hl7MessageAdmin(AppendOnlyAdmin):
    list_display = ("received_at", "sender", "control_id", "message_type", "outcome", "resent")
    list_filter = ("outcome", "via")
    exclude = ("raw", "ack")
    readonly_fields = ("received_at", "via", "peer", "sender", "control_id", "digest",
                       "message_type", "sent_at", "site", "outcome", "reason", "resent",
                       "last_resent_at")  # fmt: skip
    staff_view_permission = "sites.manage_integrations"
