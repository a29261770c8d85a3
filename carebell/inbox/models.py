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
    # Every text the contact sent here; each person's unread count is this less the
    # count they had seen (ConversationRead), so reading lowers only their own.
    unread_count = models.PositiveIntegerField(
        default=0, help_text="Texts received in all; unread per person is kept in reads."
    )
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Bumped (under the row's lock) by every change staff should see: a text, a
    # reply, an assignment, done or reopened. An open page polls by comparing it.
    version = models.PositiveBigIntegerField(default=0)
    changed_at = models.DateTimeField(null=True, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
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
        indexes = [
            # The inbox list, newest first, one keyset page at a time.
            models.Index(
                fields=["site", "-last_message_at", "-id"], name="conversation_site_newest"
            ),
            # The inbox list's idle poll: the newest change of a site, one index seek.
            models.Index(fields=["site", "changed_at"], name="conversation_site_changed"),
        ]

    def __str__(self) -> str:
        return f"conversation #{self.pk}"


class ConversationRead(models.Model):
    """How many of a conversation's texts one staff member has seen: their unread
    count is the conversation's `unread_count` less `seen_count`."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seen_count = models.PositiveIntegerField(default=0)
    read_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="conversation_read_once")
        ]

    def __str__(self) -> str:
        return f"read {self.conversation_id} by {self.user_id}"


class Presence(models.Model):
    """That a staff member has a conversation open, renewed by their page's heartbeat.
    Kept in the database, not in a process: every web worker must see every viewer."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="presences"
    )
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["conversation", "user"], name="presence_once")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.conversation_id}"


class Reply(models.Model):
    """A staff member's reply: the outbox message it became, and who wrote it."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="replies")
    message = models.OneToOneField(
        "messaging.OutboxMessage", on_delete=models.PROTECT, related_name="+"
    )
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    quick_response = models.ForeignKey(
        "QuickResponse", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"reply #{self.pk}"


class OptOutReview(models.Model):
    """A text that reads like "please stop" (SPEC §7.2), waiting for a person to opt
    the number out or dismiss it. Never decided by carebell itself, never deleted."""

    class Decision(models.TextChoices):
        OPTED_OUT = "opted_out"
        DISMISSED = "dismissed"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.PROTECT, related_name="reviews")
    inbound = models.OneToOneField(
        "messaging.InboundMessage", on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    decision = models.CharField(max_length=12, choices=Decision.choices, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["site", "created_at"],
                condition=models.Q(decision=""),
                name="review_pending",
            )
        ]

    def __str__(self) -> str:
        return f"review of inbound {self.inbound_id}"


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
