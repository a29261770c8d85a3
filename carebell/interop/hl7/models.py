"""HL7 v2 senders, the messages they sent (raw bytes and outcome), and the order
of what was applied."""

from __future__ import annotations

from django.db import models

from carebell.sites.models import Site


class Hl7Sender(models.Model):
    """A feed: messages whose MSH-3 (and MSH-4, when set) match go to `site`.

    A row with both blank takes every sender no other row names. `patient_source` is
    the namespace of the feed's patient and appointment ids (Patient.source): two
    feeds of one practice system share it. `mapping` overrides where data lives
    (keys of carebell.interop.hl7.mapping.Mapping)."""

    sending_application = models.CharField(max_length=64, blank=True)
    sending_facility = models.CharField(max_length=64, blank=True)
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="hl7_senders")
    patient_source = models.CharField(
        max_length=32, blank=True, help_text='Patient.source of its ids; blank: "hl7:<facility>".'
    )
    mapping = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sending_application", "sending_facility"], name="hl7_sender_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sending_application or '*'}/{self.sending_facility or '*'} → {self.site_id}"


class Outcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    STALE = "stale", "Older than what was applied: kept, not applied"
    ERROR = "error", "Error (AE)"
    REJECTED = "rejected", "Rejected (AR)"
    CHECKED = "checked", "Checked (dry run)"


class Hl7Message(models.Model):
    """Every message received, as its bytes, with what became of it and the ACK sent.

    A resend (same sender, MSH-10 and bytes) is not stored again: `resent` counts it
    and it gets `ack` again. Kept for CAREBELL_HL7_RETENTION_DAYS (`carebell hl7
    purge`)."""

    received_at = models.DateTimeField(db_index=True)
    via = models.CharField(max_length=16, help_text="mllp or file")
    peer = models.CharField(max_length=200, blank=True, help_text="Address or file name.")
    sender = models.CharField(max_length=140, blank=True, help_text="MSH-3/MSH-4")
    control_id = models.CharField(max_length=64, blank=True)
    digest = models.CharField(max_length=64, help_text="SHA-256 of the message's segments.")
    message_type = models.CharField(max_length=24, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="MSH-7")
    site = models.ForeignKey(
        Site, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    raw = models.BinaryField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    ack = models.BinaryField(blank=True, default=b"")
    resent = models.PositiveIntegerField(default=0)
    last_resent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sender", "control_id", "digest"],
                condition=~models.Q(control_id=""),
                name="hl7_message_once",
            )
        ]

    def __str__(self) -> str:
        return f"{self.message_type} {self.control_id} from {self.sender}: {self.outcome}"


class Hl7Applied(models.Model):
    """The MSH-7 of the newest message applied to one appointment, prescription or
    patient of a feed: an older one arriving later does not undo it."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="+")
    source = models.CharField(max_length=32)
    entity = models.CharField(max_length=16)
    external_id = models.CharField(max_length=64)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "source", "entity", "external_id"], name="hl7_applied_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.entity} {self.external_id} at {self.sent_at:%Y-%m-%d %H:%M}"
