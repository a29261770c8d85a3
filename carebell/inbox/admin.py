"""Admin for conversations, quick responses and staff notifications."""

from __future__ import annotations

from django.contrib import admin

from carebell.inbox.models import (
    Conversation,
    ConversationRead,
    NotificationRead,
    OptOutReview,
    Presence,
    QuickResponse,
    Reply,
    StaffNotification,
)
from carebell.sites.admin_scoping import SITE_FILTER, AppendOnlyAdmin, ScopedAdmin

_INBOX = "sites.work_inbox"


class InboxAdmin(ScopedAdmin):
    staff_view_permission = _INBOX
    staff_change_permission = _INBOX


@admin.register(Conversation)
class ConversationAdmin(InboxAdmin):
    list_display = (
        "address",
        "channel",
        "site",
        "unread_count",
        "last_message_at",
        "assigned_to",
        "assigned_department",
    )
    list_filter = ("channel", SITE_FILTER)
    search_fields = ("address",)
    list_select_related = ("site", "assigned_to", "assigned_department")
    readonly_fields = ("unread_count", "last_message_at")


@admin.register(QuickResponse)
class QuickResponseAdmin(InboxAdmin):
    list_display = ("name", "site", "updated_at")
    list_filter = (SITE_FILTER,)
    search_fields = ("name", "body")
    list_select_related = ("site",)


@admin.register(StaffNotification)
class StaffNotificationAdmin(InboxAdmin):
    list_display = ("created_at", "kind", "department", "site", "read_at", "emailed_at")
    list_filter = ("kind", SITE_FILTER)
    search_fields = ("kind", "text")
    list_select_related = ("site", "department")
    date_hierarchy = "created_at"


@admin.register(NotificationRead)
class NotificationReadAdmin(InboxAdmin):
    site_path = "notification__site"
    list_display = ("notification", "user", "read_at")
    search_fields = ("user__username",)
    list_select_related = ("notification", "user")


# What the staff app records as people work the inbox: read here, written there
# (carebell.inbox), so an opt-out decision or a reply's author cannot be rewritten.
class InboxRecordAdmin(AppendOnlyAdmin):
    site_path = "conversation__site"
    staff_view_permission = _INBOX
    list_select_related = ("conversation",)


@admin.register(ConversationRead)
class ConversationReadAdmin(InboxRecordAdmin):
    list_display = ("conversation", "user", "seen_count", "read_at")


@admin.register(Presence)
class PresenceAdmin(InboxRecordAdmin):
    list_display = ("conversation", "user", "seen_at")


@admin.register(Reply)
class ReplyAdmin(InboxRecordAdmin):
    list_display = ("created_at", "conversation", "sent_by", "quick_response", "message")
    search_fields = ("conversation__address",)


@admin.register(OptOutReview)
class OptOutReviewAdmin(InboxRecordAdmin):
    site_path = "site"
    list_display = ("created_at", "conversation", "decision", "decided_by", "decided_at")
    list_filter = ("decision", SITE_FILTER)
    search_fields = ("conversation__address",)
