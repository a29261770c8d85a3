"""Admin for message formats, automated-message rules, the outbox and its history.

Outbox rows are written only through carebell.outbox, so the queue and
everything that records what happened to a message are read-only here.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils import timezone

from carebell import outbox
from carebell.audit import trail as audit_trail
from carebell.core.reasons import Code, reason
from carebell.formats.service import save_format
from carebell.messaging.models import (
    AutomatedMessage,
    DeliveryAttempt,
    GroupRecipient,
    GroupSend,
    InboundMessage,
    MessageEvent,
    MessageTemplate,
    OutboundEvent,
    OutboxMessage,
    OutboxSubject,
    PlannerLease,
    ProviderEvent,
    SenderPace,
)
from carebell.sites.admin_scoping import (
    SITE_FILTER,
    AppendOnlyAdmin,
    AppendOnlyTabularInline,
    ScopedAdmin,
)

_QUEUE = "sites.view_queue"


class MessageTemplateForm(forms.ModelForm):
    def _get_validation_exclusions(self):
        # one_template_in_use is kept by formats.service.save_format, which hands the
        # flag over from the format in use instead of refusing a second one.
        return {*super()._get_validation_exclusions(), "site"}


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ScopedAdmin):
    form = MessageTemplateForm
    list_display = ("name", "kind", "channel", "language", "site", "in_use", "is_default")
    list_filter = ("kind", "channel", "language", "in_use", "is_default", SITE_FILTER)
    search_fields = ("name", "subject", "body")
    list_select_related = ("site",)
    staff_view_permission = "sites.manage_templates"
    staff_change_permission = "sites.manage_templates"
    actions = ("restore_default",)

    def save_model(self, request, obj, form, change) -> None:
        save_format(obj, by=request.user)

    @admin.action(description="Restore carebell's default text", permissions=["change"])
    def restore_default(self, request, queryset) -> None:
        for template in queryset:
            template.restore_default()
            template.save()
            self.log_change(request, template, [{"changed": {"fields": ["body"]}}])
        self.message_user(request, f"Restored {queryset.count()} format(s).")


@admin.register(AutomatedMessage)
class AutomatedMessageAdmin(ScopedAdmin):
    list_display = ("name", "kind", "enabled", "offsets", "channels", "site")
    list_filter = ("enabled", "kind", SITE_FILTER)
    search_fields = ("name", "kind")
    list_select_related = ("site",)
    staff_view_permission = "sites.view_automated_messages"
    staff_change_permission = "sites.edit_automated_messages"


class DeliveryAttemptInline(AppendOnlyTabularInline):
    model = DeliveryAttempt
    site_path = "message__site"
    fields = (
        "number",
        "provider",
        "status",
        "started_at",
        "finished_at",
        "provider_message_id",
        "error_code",
        "permanent",
    )
    readonly_fields = fields
    show_change_link = False
    staff_view_permission = _QUEUE


class MessageEventInline(AppendOnlyTabularInline):
    model = MessageEvent
    site_path = "message__site"
    fields = ("at", "status", "reasons", "note")
    readonly_fields = fields
    show_change_link = False
    staff_view_permission = _QUEUE


class OutboxSubjectInline(AppendOnlyTabularInline):
    model = OutboxSubject
    site_path = "message__site"
    fields = ("entity_type", "entity_id")
    readonly_fields = fields
    show_change_link = False
    staff_view_permission = _QUEUE


@admin.register(OutboxMessage)
class OutboxMessageAdmin(AppendOnlyAdmin):
    list_display = (
        "planned_at",
        "channel",
        "kind",
        "priority",
        "entity_type",
        "entity_name",
        "status",
        "attempts",
        "site",
    )
    list_filter = ("status", "channel", "kind", "block_reason", SITE_FILTER)
    search_fields = ("entity_name", "to_address", "provider_message_id", "dedupe_key")
    list_select_related = ("site",)
    date_hierarchy = "planned_at"
    inlines = (OutboxSubjectInline, DeliveryAttemptInline, MessageEventInline)
    staff_view_permission = _QUEUE
    actions = ("cancel_pending",)

    @admin.action(description="Delete (cancel) selected pending messages", permissions=["cancel"])
    def cancel_pending(self, request, queryset) -> None:
        ids = list(queryset.values_list("id", flat=True))
        cancelled = outbox.cancel_messages(
            ids,
            [reason(Code.CANCELLED_BY_STAFF, user=request.user.get_username())],
            timezone.now(),
        )
        for message in queryset.filter(id__in=ids, status="cancelled"):
            audit_trail.record(request.user, "cancel", message)
        skipped = len(ids) - cancelled
        self.message_user(
            request,
            f"Cancelled {cancelled} message(s)."
            + (f" {skipped} were already sent or ended and are kept." if skipped else ""),
        )

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("sites.delete_queued")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(AppendOnlyAdmin):
    site_path = "message__site"
    list_display = ("message", "number", "provider", "status", "started_at", "error_code")
    list_filter = ("status", "provider", "permanent")
    search_fields = ("provider_message_id", "idempotency_key")
    list_select_related = ("message",)
    staff_view_permission = _QUEUE


@admin.register(MessageEvent)
class MessageEventAdmin(AppendOnlyAdmin):
    site_path = "message__site"
    list_display = ("message", "at", "status", "note")
    list_filter = ("status",)
    search_fields = ("note",)
    list_select_related = ("message",)
    staff_view_permission = _QUEUE


@admin.register(ProviderEvent)
class ProviderEventAdmin(AppendOnlyAdmin):
    site_path = "attempt__message__site"
    list_display = ("received_at", "provider", "provider_message_id", "status", "error_code")
    list_filter = ("provider", "status")
    search_fields = ("provider_message_id",)
    staff_view_permission = _QUEUE


@admin.register(InboundMessage)
class InboundMessageAdmin(AppendOnlyAdmin):
    list_display = ("received_at", "channel", "from_address", "intent", "needs_review", "site")
    list_filter = ("intent", "needs_review", "channel", SITE_FILTER)
    search_fields = ("from_address", "to_address", "body", "provider_message_id")
    list_select_related = ("site",)
    date_hierarchy = "received_at"
    staff_view_permission = "sites.work_inbox"


@admin.register(OutboundEvent)
class OutboundEventAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "event_type", "site", "delivered_at", "attempts")
    list_filter = ("event_type", SITE_FILTER)
    search_fields = ("event_type",)
    list_select_related = ("site",)
    staff_view_permission = _QUEUE


@admin.register(PlannerLease)
class PlannerLeaseAdmin(AppendOnlyAdmin):
    site_path = None
    list_display = ("name", "holder", "expires_at")
    search_fields = ("name", "holder")


@admin.register(SenderPace)
class SenderPaceAdmin(AppendOnlyAdmin):
    site_path = None
    list_display = ("sender", "next_free_at")
    search_fields = ("sender",)


@admin.register(OutboxSubject)
class OutboxSubjectAdmin(AppendOnlyAdmin):
    site_path = "message__site"
    list_display = ("message", "entity_type", "entity_id")
    list_filter = ("entity_type",)
    search_fields = ("entity_type",)
    list_select_related = ("message",)
    staff_view_permission = _QUEUE


# Group sends are made and run in the staff app (carebell.sends); here they are read.
@admin.register(GroupSend)
class GroupSendAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "site", "status", "channels", "total", "created_by")
    list_filter = ("status", SITE_FILTER)
    search_fields = ("email_subject", "sms_body")
    list_select_related = ("site", "created_by")
    staff_view_permission = _QUEUE


@admin.register(GroupRecipient)
class GroupRecipientAdmin(AppendOnlyAdmin):
    site_path = "group__site"
    list_display = ("group", "patient", "selected", "done_at")
    list_filter = ("selected",)
    search_fields = ("patient__last_name",)
    raw_id_fields = ("group", "patient")
    staff_view_permission = _QUEUE
