"""Patients, the contacts who hear about them, how to reach them, and consent."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carebell.core.vocab import (
    Authority,
    Category,
    Channel,
    ConsentSource,
    ContactPointKind,
    Preference,
    Relationship,
)
from carebell.fields import TimeStamped, choices, in_enum
from carebell.sites.models import Site, validate_time_zone

LANGUAGES = [("en", "English"), ("es", "Español")]


class Patient(TimeStamped):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="patients")
    source = models.CharField(max_length=32, default="carebell", help_text="Feed it came from.")
    external_id = models.CharField(max_length=64, help_text="The id in the source system.")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    birth_date = models.DateField(null=True, blank=True)
    language = models.CharField(max_length=8, choices=LANGUAGES, default="en")
    last_visit_on = models.DateField(null=True, blank=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "source", "external_id"], name="patient_external_id_unique"
            )
        ]
        indexes = [
            models.Index(fields=["site", "last_name", "first_name"]),
            # Welcome messages look for patients added or consenting in the last days.
            models.Index(fields=["site", "created_at"]),
            models.Index(fields=["site", "consented_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def display_name(self) -> str:
        return str(self)


class Contact(TimeStamped):
    """A person who receives messages about a patient (the patient, or family)."""

    patient = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="contacts")
    position = models.PositiveSmallIntegerField(help_text="1 = first contact.")
    relationship = models.CharField(max_length=16, choices=choices(Relationship))
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    authority = models.CharField(
        max_length=16, choices=choices(Authority), default=Authority.BLANK, blank=True
    )
    end_date = models.DateField(null=True, blank=True)
    resides_with_patient = models.BooleanField(default=True)
    language = models.CharField(max_length=8, choices=LANGUAGES, default="en")
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="The contact's own zone, when known; else the site's.",
    )

    class Meta:
        ordering = ["patient_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["patient", "position"], name="contact_position_unique"),
            models.CheckConstraint(
                condition=models.Q(position__gte=1), name="contact_position_gte_1"
            ),
            models.CheckConstraint(
                condition=in_enum("authority", Authority), name="authority_valid"
            ),
            models.CheckConstraint(
                condition=in_enum("relationship", Relationship), name="relationship_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} (#{self.position})"


class ContactPoint(TimeStamped):
    """A phone number (E.164) or email (normalised) of a contact."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="points")
    kind = models.CharField(max_length=8, choices=choices(ContactPointKind))
    value = models.CharField(max_length=254, help_text="E.164 for phones, lower-case for email.")
    raw_value = models.CharField(max_length=254, blank=True, help_text="As entered or received.")
    is_valid = models.BooleanField(default=True, help_text="False when the value did not parse.")
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_method = models.CharField(max_length=32, blank=True)
    opted_out_sms = models.BooleanField(default=False)
    opted_out_call = models.BooleanField(default=False)
    opted_out_email = models.BooleanField(default=False)
    consent_sms = models.BooleanField(default=False, help_text="Latest consent record grants SMS.")
    consent_call = models.BooleanField(
        default=False, help_text="Latest consent record grants calls."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "kind"], name="contact_point_kind_unique"),
            models.CheckConstraint(
                condition=in_enum("kind", ContactPointKind), name="point_kind_valid"
            ),
        ]
        indexes = [models.Index(fields=["value"])]

    def __str__(self) -> str:
        return f"{self.kind} of {self.contact_id}"

    @property
    def is_verified(self) -> bool:
        return self.verified_at is not None


class ContactPreference(TimeStamped):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="preferences")
    category = models.CharField(max_length=24, choices=choices(Category))
    value = models.CharField(max_length=24, choices=choices(Preference), blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "category"], name="preference_unique"),
            models.CheckConstraint(condition=in_enum("category", Category), name="category_valid"),
            models.CheckConstraint(condition=in_enum("value", Preference), name="preference_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.category}: {self.value or '(blank)'}"


class ConsentRecord(models.Model):
    """Append-only: a grant or revocation of consent for one channel of a contact point."""

    class Action(models.TextChoices):
        GRANT = "grant"
        REVOKE = "revoke"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    contact_point = models.ForeignKey(
        ContactPoint, on_delete=models.PROTECT, related_name="consents"
    )
    address = models.CharField(max_length=254, help_text="The value consented, kept as history.")
    channel = models.CharField(max_length=8, choices=choices(Channel))
    action = models.CharField(max_length=8, choices=Action.choices)
    source = models.CharField(max_length=16, choices=choices(ConsentSource))
    wording = models.TextField(help_text="The exact words the person agreed to.")
    recorded_at = models.DateTimeField()
    captured_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    captured_by_system = models.CharField(max_length=64, blank=True)
    wording_version = models.CharField(
        max_length=32, blank=True, help_text="The version of the site's wording shown."
    )
    evidence = models.CharField(
        max_length=300, blank=True, help_text="What else backs it: the text sent, a form's id."
    )
    signature_sha256 = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 (hex) of the signature image."
    )
    # The image is kept in the row itself: the database refuses to change or delete
    # ledger rows (audit migration 0002), backups carry it, and the hash beside it
    # proves it unchanged; a file in the data dir could vanish or be replaced unseen.
    signature_image = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["site", "recorded_at"], name="consent_site_time")]
        constraints = [
            models.CheckConstraint(
                condition=in_enum("channel", Channel), name="consent_channel_valid"
            ),
            models.CheckConstraint(
                condition=in_enum("source", ConsentSource), name="consent_source_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(action__in=["grant", "revoke"]), name="consent_action_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.channel} ({self.source})"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("Consent history is append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Consent history is append-only.")


class OptOutEvent(models.Model):
    """Append-only history of opt-outs and opt-ins of an address at a site."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    address = models.CharField(max_length=254)
    channel = models.CharField(max_length=8, choices=choices(Channel))
    opted_out = models.BooleanField(help_text="True for an opt-out, False for an opt-in.")
    source = models.CharField(max_length=32, help_text="keyword, provider_error, staff, link …")
    detail = models.CharField(max_length=200, blank=True)
    recorded_at = models.DateTimeField()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["site", "address", "channel"])]

    def __str__(self) -> str:
        return f"{'opt-out' if self.opted_out else 'opt-in'} {self.channel}"


class ConsentWording(models.Model):
    """The words a site shows when it asks for consent, one row per version. A new
    version is a new row: each consent record names the version and keeps its words,
    so what a person agreed to is never rewritten by a later edit."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    version = models.CharField(max_length=32)
    wording = models.TextField()
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["site", "version"], name="consent_wording_version")
        ]

    def __str__(self) -> str:
        return f"consent wording {self.version}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("A consent wording is never changed: add a new version.")
        super().save(*args, **kwargs)


class VerificationCode(models.Model):
    """A one-time code sent to prove a contact point reaches its owner (SPEC §3.5).
    Only a keyed hash of the digits is kept (carebell.people.verification)."""

    contact_point = models.ForeignKey(ContactPoint, on_delete=models.CASCADE, related_name="codes")
    address = models.CharField(max_length=254, help_text="The value the code was sent to.")
    channel = models.CharField(max_length=8, choices=choices(Channel), default=Channel.SMS)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    code_hash = models.CharField(max_length=128)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    wrong_tries = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["contact_point", "created_at"])]

    def __str__(self) -> str:
        return f"code for {self.contact_point_id}"
