"""Organizations, their sites, delivery settings, departments and staff access."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from carebell.core.vocab import CancellationMode, Channel, ReadyTrigger, SiteKind, Weekday
from carebell.fields import TimeStamped, choices, in_enum

ALL_DAYS = [day.value for day in Weekday]


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. America/New_York).")


def validate_channel_list(value: object) -> None:
    allowed = {c.value for c in Channel}
    if not isinstance(value, list) or not set(value) <= allowed:
        raise ValidationError(f"Choose channels among {', '.join(sorted(allowed))}.")


def validate_day_list(value: object) -> None:
    if not isinstance(value, list) or not value or not set(value) <= set(ALL_DAYS):
        raise ValidationError("Choose at least one weekday (mon … sun).")


def validate_positive_int_list(value: object) -> None:
    if not isinstance(value, list) or not all(isinstance(v, int) and v > 0 for v in value):
        raise ValidationError("Give a list of whole numbers of days, each at least 1.")


class Organization(TimeStamped):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)

    def __str__(self) -> str:
        return self.name


class Site(TimeStamped):
    """A practice location or a pharmacy store."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="sites")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=choices(SiteKind))
    time_zone = models.CharField(max_length=64, validators=[validate_time_zone])
    phone_region = models.CharField(
        max_length=2, default="US", help_text="ISO country code used to read local numbers."
    )
    phone = models.CharField(max_length=32, help_text="Number shown to patients (E.164).")
    address = models.TextField(blank=True)
    sms_from = models.CharField(max_length=64, blank=True, help_text="SMS number or service id.")
    email_from = models.EmailField(blank=True)
    caller_id = models.CharField(max_length=32, blank=True)
    providers = models.JSONField(
        default=dict, blank=True, help_text='Per-channel provider override, e.g. {"sms": "sim"}.'
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="site_name_unique"),
            models.CheckConstraint(condition=in_enum("kind", SiteKind), name="site_kind_valid"),
        ]
        permissions = [
            ("view_automated_messages", "Can view automated messages"),
            ("edit_automated_messages", "Can create, edit, enable and disable automated messages"),
            ("edit_delivery_settings", "Can edit delivery settings"),
            ("manage_templates", "Can manage message formats"),
            ("group_send", "Can send general and group messages"),
            ("work_inbox", "Can read and answer the two-way inbox"),
            ("view_queue", "Can view the message queue"),
            ("delete_queued", "Can delete (cancel) queued messages"),
            ("view_audit", "Can view the audit log"),
            ("view_patients", "Can view patients and their messaging"),
            ("edit_patients", "Can edit patients, contacts and preferences"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class Department(TimeStamped):
    """A team that receives staff notifications (e.g. "Front Desk")."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(max_length=100)
    email = models.EmailField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="department_name_unique")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.site})"


class StaffMembership(TimeStamped):
    """Grants one staff member access to one site. Staff see only granted sites."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "site"], name="membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.site}"


class ReviewLink(TimeStamped):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="review_links")
    label = models.CharField(max_length=100)
    url = models.URLField()
    is_default = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site"], condition=models.Q(is_default=True), name="one_default_review_link"
            )
        ]

    def __str__(self) -> str:
        return self.label


class DeliverySettings(TimeStamped):
    """A site's delivery rules (SPEC §4). An automated message may override some."""

    site = models.OneToOneField(Site, on_delete=models.CASCADE, related_name="delivery")
    email_sms_window_start = models.TimeField(default=dt.time(8, 0))
    email_sms_window_end = models.TimeField(default=dt.time(20, 0))
    call_window_start = models.TimeField(default=dt.time(9, 0))
    call_window_end = models.TimeField(default=dt.time(19, 0))
    delivery_days = models.JSONField(default=list, validators=[validate_day_list])
    daily_process_start = models.TimeField(default=dt.time(8, 0))
    cancellation_mode = models.CharField(
        max_length=16, choices=choices(CancellationMode), default=CancellationMode.BY_REQUEST
    )
    track_cancellations = models.BooleanField(default=True)
    cancellation_department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    cancellation_deadline_hours = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(24)]
    )
    combine_siblings = models.BooleanField(default=True)
    only_verified = models.BooleanField(default=False)
    require_opt_in = models.BooleanField(default=False)
    restricted_words = models.JSONField(default=list, blank=True)
    smart_encoding = models.BooleanField(
        default=False, help_text="Replace smart quotes and similar before sending SMS."
    )
    # Pharmacy: refill reminders.
    refill_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    refill_when_due = models.BooleanField(default=True)
    refill_when_past_due = models.BooleanField(default=True)
    refill_days_before = models.PositiveSmallIntegerField(default=3)
    refill_days_after = models.PositiveSmallIntegerField(default=7)
    refill_non_maintenance = models.BooleanField(default=False)
    refill_controlled = models.BooleanField(default=False, help_text="C3–C5")
    refill_c2 = models.BooleanField(default=False)
    # Pharmacy: ready for pickup and after.
    ready_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    ready_trigger = models.CharField(
        max_length=24, choices=choices(ReadyTrigger), default=ReadyTrigger.LABEL_PRINTED
    )
    pickup_reminder_days = models.JSONField(
        default=list, blank=True, validators=[validate_positive_int_list]
    )
    pickup_confirmation_channels = models.JSONField(
        default=list, blank=True, validators=[validate_channel_list]
    )
    # Greetings, general and review messages.
    birthday_channels = models.JSONField(
        default=list, blank=True, validators=[validate_channel_list]
    )
    welcome_channels = models.JSONField(
        default=list, blank=True, validators=[validate_channel_list]
    )
    welcome_on_consent = models.BooleanField(
        default=False, help_text="Welcome when the patient consents rather than when added."
    )
    general_channels = models.JSONField(
        default=list, blank=True, validators=[validate_channel_list]
    )
    review_channels = models.JSONField(default=list, blank=True, validators=[validate_channel_list])
    review_delay_hours = models.PositiveSmallIntegerField(default=24)
    review_resend_days = models.PositiveSmallIntegerField(default=7)
    review_max_sends = models.PositiveSmallIntegerField(default=2)
    # Pharmacy "Patient Default": channel sets applied to a patient's preferences.
    patient_defaults = models.JSONField(
        default=dict, blank=True, help_text='Category → preference, e.g. {"rx_ready": "email+sms"}.'
    )
    apply_defaults_on_consent = models.BooleanField(
        default=False, help_text="Apply patient defaults only when the patient consents."
    )

    class Meta:
        verbose_name_plural = "delivery settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(cancellation_deadline_hours__gte=1)
                & models.Q(cancellation_deadline_hours__lte=24),
                name="cancellation_deadline_1_24",
            ),
            models.CheckConstraint(
                condition=in_enum("cancellation_mode", CancellationMode),
                name="cancellation_mode_valid",
            ),
            models.CheckConstraint(
                condition=in_enum("ready_trigger", ReadyTrigger), name="ready_trigger_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery settings of {self.site}"

    def clean(self) -> None:
        for start, end, label in (
            (self.email_sms_window_start, self.email_sms_window_end, "email/SMS"),
            (self.call_window_start, self.call_window_end, "call"),
        ):
            if start >= end:
                raise ValidationError(f"The {label} window must start before it ends.")

    @classmethod
    def defaults_for(cls, site: Site) -> DeliverySettings:
        """The out-of-the-box settings of SPEC §4 for a new site of its kind."""
        from carebell.core.content import DEFAULT_RESTRICTED_WORDS

        sms_email = [Channel.SMS.value, Channel.EMAIL.value]
        return cls(
            site=site,
            delivery_days=list(ALL_DAYS),
            require_opt_in=site.kind == SiteKind.PHARMACY,
            restricted_words=list(DEFAULT_RESTRICTED_WORDS),
            refill_channels=sms_email,
            ready_channels=sms_email,
            pickup_reminder_days=[3, 7],
            pickup_confirmation_channels=[],
            birthday_channels=sms_email,
            welcome_channels=sms_email,
            general_channels=sms_email,
            review_channels=sms_email,
        )
