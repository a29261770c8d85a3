"""Message formats, automated-message rules, the outbox and what came back.

Outbox rows are written only through carebell.outbox (the one writer).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carebell.core.vocab import AttemptStatus, BlockReason, Channel, Kind, OutboxStatus
from carebell.fields import TimeStamped, choices, in_enum
from carebell.people.models import LANGUAGES, Contact, ContactPoint, Patient
from carebell.sites.models import Site

PENDING = [OutboxStatus.SCHEDULED.value, OutboxStatus.QUEUED.value]


class MessageTemplate(TimeStamped):
    """A message format: what one kind of message says over one channel in one language."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="templates")
    channel = models.CharField(max_length=8, choices=choices(Channel))
    kind = models.CharField(max_length=32, choices=choices(Kind))
    language = models.CharField(max_length=8, choices=LANGUAGES, default="en")
    name = models.CharField(max_length=200, help_text="Subject for email; a label otherwise.")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(help_text="Plain text (email text part, SMS, or call script).")
    html_body = models.TextField(blank=True)
    is_group = models.BooleanField(default=False)
    in_use = models.BooleanField(
        default=True, help_text="The format the automated messages use for this kind."
    )
    is_default = models.BooleanField(default=False, help_text="Unchanged from carebell's default.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "kind", "channel", "language"],
                condition=models.Q(in_use=True),
                name="one_template_in_use",
            ),
            models.CheckConstraint(
                condition=in_enum("channel", Channel), name="template_channel_valid"
            ),
            models.CheckConstraint(condition=in_enum("kind", Kind), name="template_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} / {self.channel} / {self.language}: {self.name}"

    def problems(self) -> list:
        """Everything wrong with this template (errors refuse the save; warnings are
        shown), judged as the editor, the API and the preview command judge it."""
        from carebell.formats.service import validate_template

        return validate_template(
            self.channel,
            self.kind,
            self.subject,
            self.body,
            self.html_body,
            language=self.language,
            site_name=self.site.name if self.site_id else None,
            restricted_words=self.site.delivery.restricted_words if self.site_id else (),
        )

    def clean(self) -> None:
        from carebell.formats.service import as_validation_error

        if error := as_validation_error(self.problems()):
            raise error

    def save(self, *args, **kwargs) -> None:
        # Refused before anything is written, whatever path saves the template.
        self.clean()
        super().save(*args, **kwargs)

    def restore_default(self) -> None:
        """Replace subject and bodies with carebell's default for this kind,
        channel and language ("Load default" / "Restore default")."""
        from carebell.formats.service import default_template

        default = default_template(Kind(self.kind), Channel(self.channel), self.language)
        self.name, self.subject = default.name, default.subject
        self.body, self.html_body = default.body, default.html_body
        self.is_default = True


class AutomatedMessage(TimeStamped):
    """A rule: which kind of message goes when, over which channels (SPEC §5)."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="automated_messages")
    kind = models.CharField(max_length=32, choices=choices(Kind))
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=False)
    offsets = models.JSONField(
        default=list,
        blank=True,
        help_text='Timing, e.g. [{"days": 3}] or [{"days": 1}, {"hours": 2}] before the event.',
    )
    channels = models.JSONField(default=list, blank=True, help_text="Empty = the site's settings.")
    filters = models.JSONField(
        default=dict,
        blank=True,
        help_text="appointment_types, providers, locations, drug classes; empty = all.",
    )
    settings_override = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=in_enum("kind", Kind), name="rule_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class OutboxMessage(models.Model):
    """One message to one contact point: planned, sent, or ended with a reason.

    The planner writes millions of these, so the table carries only the indexes its
    queries use: foreign keys that are only followed when a contact, a rule or a
    format is deleted (rare, staff-driven) have none of their own; site and patient
    lead composite indexes below."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+", db_index=False)
    patient = models.ForeignKey(
        Patient,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="outbox",
        db_index=False,
    )
    contact = models.ForeignKey(
        Contact,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    contact_point = models.ForeignKey(
        ContactPoint,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    to_address = models.CharField(max_length=254)
    channel = models.CharField(max_length=8, choices=choices(Channel))
    kind = models.CharField(max_length=32, choices=choices(Kind))
    priority = models.SmallIntegerField(default=5, help_text="Lower goes first.")
    rule = models.ForeignKey(
        AutomatedMessage,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    template = models.ForeignKey(
        MessageTemplate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    language = models.CharField(max_length=8, default="en")
    entity_type = models.CharField(max_length=24, blank=True)
    entity_id = models.BigIntegerField(null=True, blank=True)
    entity_name = models.CharField(max_length=200, blank=True)
    entity_ids = models.JSONField(
        default=list, blank=True, help_text="All entities of a combined message."
    )
    event_at = models.DateTimeField(null=True, blank=True, help_text="When the subject happens.")
    not_after = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Never sent at or after this (the appointment's start, the birthday's end).",
    )
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    planned_at = models.DateTimeField(help_text="Not before this instant.")
    due_at = models.DateTimeField(help_text="When the dispatcher may next take it.")
    status = models.CharField(
        max_length=12, choices=choices(OutboxStatus), default=OutboxStatus.SCHEDULED
    )
    block_reason = models.CharField(max_length=20, choices=choices(BlockReason), blank=True)
    reasons = models.JSONField(default=list, blank=True, help_text="Why: reason codes and details.")
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    html_body = models.TextField(blank=True)
    segments = models.PositiveSmallIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    provider = models.CharField(max_length=32, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=in_enum("status", OutboxStatus), name="outbox_status_valid"
            ),
            models.CheckConstraint(
                condition=in_enum("channel", Channel), name="outbox_channel_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(block_reason="") | models.Q(status=OutboxStatus.BLOCKED.value),
                name="block_reason_only_when_blocked",
            ),
        ]
        indexes = [
            # The dispatcher's claim scans only rows still to send, by due time.
            models.Index(
                fields=["due_at"],
                condition=models.Q(status__in=[*PENDING, OutboxStatus.SENDING.value]),
                name="outbox_due",
            ),
            models.Index(fields=["site", "planned_at"]),
            models.Index(fields=["entity_type", "entity_id"]),
            models.Index(fields=["patient", "planned_at"]),
            # Replies and opt-outs find a number's messages (SPEC §7).
            models.Index(fields=["to_address", "channel"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.channel} #{self.pk}"


class DeliveryAttempt(models.Model):
    """One hand-over to a provider. Saved before the call so its id can go in the
    status-callback URL and reconcile a crash between the call and the commit."""

    # Indexed by the unique (message, number) below, which starts with the message.
    message = models.ForeignKey(
        OutboxMessage,
        on_delete=models.PROTECT,
        related_name="delivery_attempts",
        db_index=False,
    )
    number = models.PositiveSmallIntegerField()
    provider = models.CharField(max_length=32)
    idempotency_key = models.CharField(max_length=64)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    provider_message_id = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=16, choices=choices(AttemptStatus), default=AttemptStatus.STARTED
    )
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    permanent = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "number"], name="attempt_number_unique"),
            # A constraint rather than unique=True: no extra pattern-matching index.
            models.UniqueConstraint(fields=["idempotency_key"], name="attempt_key_unique"),
            models.CheckConstraint(
                condition=in_enum("status", AttemptStatus), name="attempt_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["provider_message_id"])]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.message_id}"


class MessageEvent(models.Model):
    """The history of an outbox row: each status it took and why."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=choices(OutboxStatus))
    reasons = models.JSONField(default=list, blank=True)
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M}"


class ProviderEvent(models.Model):
    """A provider's status callback, kept once per (provider, message id, status)."""

    provider = models.CharField(max_length=32)
    provider_message_id = models.CharField(max_length=100)
    status = models.CharField(max_length=16)
    attempt = models.ForeignKey(
        DeliveryAttempt, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    error_code = models.CharField(max_length=32, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_message_id", "status"], name="provider_event_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.status}"


class InboundMessage(models.Model):
    """An SMS, email or keypress from a contact, stored raw and classified."""

    class Intent(models.TextChoices):
        OPT_OUT = "opt_out"
        OPT_IN = "opt_in"
        HELP = "help"
        CONFIRM = "confirm"
        CANCEL = "cancel"
        POSSIBLE_OPT_OUT = "possible_opt_out"
        CHOICE = "choice"
        FREE_TEXT = "free_text"

    site = models.ForeignKey(Site, null=True, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=8, choices=choices(Channel))
    provider = models.CharField(max_length=32)
    provider_message_id = models.CharField(max_length=100)
    from_address = models.CharField(max_length=254)
    to_address = models.CharField(max_length=254)
    body = models.TextField(blank=True)
    raw = models.JSONField(default=dict)
    intent = models.CharField(max_length=20, choices=Intent.choices, default=Intent.FREE_TEXT)
    received_at = models.DateTimeField()
    conversation = models.ForeignKey(
        "inbox.Conversation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="inbound",
    )
    needs_review = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "provider_message_id"], name="inbound_once")
        ]

    def __str__(self) -> str:
        return f"inbound {self.channel} #{self.pk}"


class OutboundEvent(models.Model):
    """An event for the source system's signed webhook feed (SPEC §9)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    event_type = models.CharField(max_length=48)
    payload = models.JSONField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["delivered_at", "created_at"])]

    def __str__(self) -> str:
        return f"{self.event_type} #{self.pk}"


class PlannerLease(models.Model):
    """Who runs the planner, where no advisory lock exists (SQLite): one row per task."""

    name = models.CharField(max_length=32, unique=True)
    holder = models.CharField(max_length=100)
    expires_at = models.DateTimeField()
    last_daily_run = models.JSONField(default=dict, blank=True, help_text="site id → local date")

    def __str__(self) -> str:
        return self.name


class SenderPace(models.Model):
    """The next free sending slot of one sender (an SMS number or service), shared by
    every worker so the sender stays under its messages-per-second limit."""

    sender = models.CharField(max_length=100, unique=True)
    next_free_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.sender


class OutboxSubject(models.Model):
    """Every entity a combined message is about (siblings' appointments, a patient's
    ready fills), so a change to any one of them finds the message by index."""

    message = models.ForeignKey(OutboxMessage, on_delete=models.CASCADE, related_name="subjects")
    entity_type = models.CharField(max_length=24)
    entity_id = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["entity_type", "entity_id"])]

    def __str__(self) -> str:
        return f"{self.entity_type} {self.entity_id}"


class GroupSend(models.Model):
    """A group message (SPEC §5.6): the patients a staff member chose from a patient
    listing, the channels and words, and how far the send into the outbox has got.

    Each selected recipient is written to the outbox once (its rows carry occurrence
    keys naming this send and the patient), a batch of recipients and their
    `done_at` in one transaction, so a send stopped half-way resumes where it
    stopped and neither loses nor duplicates a message."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        SENDING = "sending"
        DONE = "done"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    channels = models.JSONField(default=list, blank=True)
    filters = models.JSONField(default=dict, blank=True, help_text="The listing's filters.")
    email_subject = models.CharField(max_length=300, blank=True)
    email_body = models.TextField(blank=True)
    sms_body = models.TextField(blank=True)
    #: Counts for the review step (messages, blocked, segments, cost), worked out once
    #: for the selection and words they were counted with; emptied when either changes.
    summary = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    total = models.PositiveIntegerField(default=0, help_text="Recipients when started.")
    done = models.PositiveIntegerField(default=0, help_text="Recipients written so far.")
    queued = models.PositiveIntegerField(default=0, help_text="Messages queued to go.")
    blocked = models.PositiveIntegerField(default=0, help_text="Messages stored blocked.")
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Whoever writes the send holds it until then."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["site", "-created_at"], name="group_send_site_newest"),
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status="sending"),
                name="group_send_unfinished",
            ),
        ]

    def __str__(self) -> str:
        return f"group send #{self.pk}"


class GroupRecipient(models.Model):
    """One patient of a group send: chosen or not, and when it was written."""

    group = models.ForeignKey(GroupSend, on_delete=models.CASCADE, related_name="recipients")
    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+", db_index=False)
    selected = models.BooleanField(default=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "patient"], name="group_recipient_once")
        ]

    def __str__(self) -> str:
        return f"recipient {self.patient_id} of {self.group_id}"
