"""The two-way inbox: conversations, quick responses and staff notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carebell.core.vocab import Channel
from carebell.fields import TimeStamped, choices
from carebell.sites.models import Department, Site


class Conversation(TimeStamped):
    """Everything exchanged with one phone number or email at one site."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="conversations")
    channel = models.CharField(max_length=8, choices=choices(Channel))
    address = models.CharField(max_length=254)
    unread_count = models.PositiveIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    awaiting_choice = models.JSONField(
        default=dict,
        blank=True,
        help_text="When the contact was asked to pick an appointment by number: "
        "the intent and the appointment ids, in the order listed.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "channel", "address"], name="conversation_unique"
            )
        ]
        indexes = [models.Index(fields=["site", "-last_message_at"])]

    def __str__(self) -> str:
        return f"conversation #{self.pk}"


class QuickResponse(TimeStamped):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="quick_responses")
    name = models.CharField(max_length=100)
    body = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="quick_response_name_unique")
        ]

    def __str__(self) -> str:
        return self.name


class StaffNotification(models.Model):
    """Tells a department something happened (e.g. a patient cancelled)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    department = models.ForeignKey(
        Department, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=48)
    text = models.CharField(max_length=500)
    entity_type = models.CharField(max_length=24, blank=True)
    entity_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # The staff list reads a site's newest first.
        indexes = [models.Index(fields=["site", "-created_at"], name="notification_site_newest")]

    def __str__(self) -> str:
        return self.kind


class NotificationRead(models.Model):
    """That one staff member has read one notification: each person's unread list is
    their own (the notification's `read_at` says only that someone read it)."""

    notification = models.ForeignKey(
        StaffNotification, on_delete=models.CASCADE, related_name="reads"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["notification", "user"], name="notification_read_once")
        ]

    def __str__(self) -> str:
        return f"read {self.notification_id} by {self.user_id}"
