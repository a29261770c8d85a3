"""Webhook endpoints of the source systems, and the durable outbox of their deliveries.

Every OutboundEvent (carebell.events) is fanned out to each enabled endpoint of its
site that subscribes to its type: one EventDelivery per (event, endpoint), which
the events worker claims with a lease, sends, and retries until the endpoint
accepts it or about three days have passed. Each attempt is kept
(DeliveryAttemptLog) for the endpoint's delivery log.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carebell.messaging.models import OutboundEvent
from carebell.sites.models import Site


class EventType(models.TextChoices):
    """The events an endpoint may subscribe to (SPEC §9)."""

    APPOINTMENT_CONFIRMED = "appointment.confirmed", "Appointment confirmed"
    APPOINTMENT_CANCELLATION_REQUESTED = (
        "appointment.cancellation_requested",
        "Cancellation requested",
    )
    APPOINTMENT_CANCELLED = "appointment.cancelled", "Appointment cancelled"
    CONTACT_OPTED_OUT = "contact.opted_out", "Contact opted out"
    CONTACT_OPTED_IN = "contact.opted_in", "Contact opted in again"
    # A consent record (SPEC §3.5), as carebell.people.consent emits it: granted or
    # revoked, each with the record's id.
    CONSENT_GRANTED = "contact.consent_granted", "Consent recorded: granted"
    CONSENT_REVOKED = "contact.consent_revoked", "Consent recorded: revoked"
    MESSAGE_DELIVERED = "message.delivered", "Message delivered"
    MESSAGE_UNDELIVERED = "message.undelivered", "Message undelivered"
    MESSAGE_FAILED = "message.failed", "Message failed"
    INBOUND_NEEDS_STAFF = "inbound.needs_staff", "Inbound message needs staff"


class WebhookEndpoint(models.Model):
    """A URL of the source system that receives a site's events, signed with its
    secret (Standard Webhooks). After a rotation the previous secret signs too,
    until `previous_secret_expires_at`, so the receiver can switch without a gap."""

    class Disabled(models.TextChoices):
        NOT = "", "Enabled"
        BY_STAFF = "staff", "Switched off by staff"
        GONE = "gone", "The endpoint answered 410 Gone"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="webhook_endpoints")
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    event_types = models.JSONField(default=list)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=8, choices=Disabled.choices, blank=True)
    secret = models.CharField(max_length=100)
    previous_secret = models.CharField(max_length=100, blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["site", "enabled"])]

    def __str__(self) -> str:
        return f"Webhook endpoint #{self.pk}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    DELIVERING = "delivering", "Being sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Given up"


class EventDelivery(models.Model):
    """One event on its way to one endpoint. `message_id` is its `webhook-id`, the
    same on every attempt and resend, so the receiver can drop repeats.

    A claimed delivery is `delivering` with `due_at` set to its lease's end: if its
    worker dies, it is due again then, and sent again (at least once, never lost)."""

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey(OutboundEvent, on_delete=models.PROTECT, related_name="+")
    message_id = models.CharField(max_length=40, unique=True)
    status = models.CharField(
        max_length=12, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    due_at = models.DateTimeField()
    #: Attempts since `retry_from`: a resend by staff starts a new round of retries.
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    #: When the current round began (the fan-out, or the last resend); retries stop
    #: about three days after it.
    retry_from = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event"], name="event_delivery_once")
        ]
        indexes = [
            # The claim: due rows of one endpoint, oldest first.
            models.Index(
                fields=["endpoint", "due_at"],
                name="event_delivery_due",
                condition=models.Q(status__in=["pending", "delivering"]),
            ),
            models.Index(fields=["endpoint", "-id"], name="event_delivery_log"),
        ]

    def __str__(self) -> str:
        return self.message_id


class DeliveryAttemptLog(models.Model):
    """One POST of a delivery: when, how long, what the endpoint answered (`number`
    counts within its round of retries)."""

    delivery = models.ForeignKey(EventDelivery, on_delete=models.CASCADE, related_name="log")
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=200, blank=True)
    outcome = models.CharField(max_length=24)

    class Meta:
        indexes = [models.Index(fields=["delivery", "number"])]

    def __str__(self) -> str:
        return f"{self.delivery_id} #{self.number}"
