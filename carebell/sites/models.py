"""Organizations, their sites, delivery settings, departments and staff access."""

from __future__ import annotations

import contextlib
import datetime as dt
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from carebell.core import senders
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
    sms_from = models.CharField(
        max_length=64,
        blank=True,
        help_text="SMS number (E.164), short code, or Messaging Service id (MG…), whose "
        "numbers are then listed under Sender numbers. Blank: carebell's default sender.",
    )
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
            ("import_data", "Can import patients, appointments and prescriptions"),
            ("manage_integrations", "Can manage API tokens, webhook endpoints and feeds"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def normalised_identities(self) -> tuple[dict[str, str], dict[str, str]]:
        """Each sending identity in its one spelling, and the errors of those that
        are not identities at all, both by field name."""
        region = self.phone_region or "US"
        readers = {
            "sms_from": lambda v: senders.normalise_sms_sender(v, region),
            "caller_id": lambda v: senders.normalise_phone(v, region),
            "email_from": senders.normalise_email,
        }
        values, errors = {}, {}
        for name, read in readers.items():
            value = getattr(self, name)
            try:
                values[name] = read(value) if value else ""
            except ValueError as error:
                values[name], errors[name] = value, str(error)
        return values, errors

    def clean(self) -> None:
        """Sending identities in their one spelling, each held by this site's
        organization alone: a number another organization sends from would bring its
        patients' replies (and their STOPs) here."""
        values, errors = self.normalised_identities()
        for name, value in values.items():
            setattr(self, name, value)
        for name, value in values.items():
            if name in errors or not value:
                continue
            if sender_held_elsewhere(value, self.organization_id, site_id=self.pk):
                errors[name] = f"{value} is already a sender of another organization."
            elif name == "sms_from" and value in default_sms_senders():
                errors[name] = (
                    f"{value} is carebell's default SMS sender: leave the field blank to "
                    "send from it."
                )
        if errors:
            raise ValidationError(errors)

    def save(self, *args, **kwargs) -> None:
        # Stored in their one spelling whatever the door; an identity another
        # organization holds is refused by SenderIdentity's unique value.
        values, _ = self.normalised_identities()
        for name, value in values.items():
            setattr(self, name, value)
        before = Site.objects.filter(pk=self.pk).values_list("organization_id", flat=True)
        with transaction.atomic():
            moved_from = set(before) if self.pk else set()
            super().save(*args, **kwargs)
            hold_senders({self.organization_id} | moved_from)


class SiteSenderNumber(TimeStamped):
    """A phone number of the Messaging Service a site sends through. Twilio picks a
    service's number per message, so replies come back to any of them: each is listed
    here to bring those replies to the organization that sends through the service."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="sender_numbers")
    number = models.CharField(max_length=32, unique=True, help_text="E.164, e.g. +12025550199.")

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        site = self.site
        try:
            self.number = senders.normalise_phone(self.number, site.phone_region)
        except ValueError as error:
            raise ValidationError({"number": str(error)}) from None
        if not senders.is_service_sid(site.sms_from):
            raise ValidationError(
                {"number": "List numbers only for a site that sends through a Messaging "
                 "Service (its SMS sender is an MG… id)."}
            )  # fmt: skip
        if sender_held_elsewhere(self.number, site.organization_id, number_id=self.pk):
            raise ValidationError(
                {"number": f"{self.number} is already a sender of another organization."}
            )
        if self.number in default_sms_senders():
            raise ValidationError({"number": f"{self.number} is carebell's default SMS sender."})

    def save(self, *args, **kwargs) -> None:
        with contextlib.suppress(ValueError):
            self.number = senders.normalise_phone(self.number, self.site.phone_region)
        with transaction.atomic():
            super().save(*args, **kwargs)
            hold_senders({self.site.organization_id})


class SenderIdentity(models.Model):
    """A sending identity (SMS number, Messaging Service, caller ID, email From) and
    the one organization whose sites send as it. Kept by `hold_senders` from the sites
    and their sender numbers; its unique value is what keeps two organizations from
    sharing a sender, whichever door their settings came through."""

    value = models.CharField(max_length=254, unique=True)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="sender_identities"
    )

    class Meta:
        verbose_name_plural = "sender identities"
        constraints = [
            models.CheckConstraint(condition=~models.Q(value=""), name="sender_identity_not_blank")
        ]

    def __str__(self) -> str:
        return self.value


_IDENTITY_FIELDS = ("sms_from", "caller_id", "email_from")


def identities_of(organization_id: int) -> set[str]:
    """Every sending identity the organization's sites use."""
    sites = Site.objects.filter(organization_id=organization_id)
    values = {v for f in _IDENTITY_FIELDS for v in sites.values_list(f, flat=True)}
    numbers = SiteSenderNumber.objects.filter(site__organization_id=organization_id)
    return (values | set(numbers.values_list("number", flat=True))) - {""}


def hold_senders(organization_ids) -> None:
    """Make each organization hold exactly the identities its sites use; one held by
    another organization raises IntegrityError (and the caller's transaction ends)."""
    for organization_id in organization_ids:
        used = identities_of(organization_id)
        held = SenderIdentity.objects.filter(organization_id=organization_id)
        held.exclude(value__in=used).delete()
        missing = used - set(held.values_list("value", flat=True))
        SenderIdentity.objects.bulk_create(
            [SenderIdentity(value=v, organization_id=organization_id) for v in sorted(missing)]
        )


def sender_held_elsewhere(
    value: str, organization_id: int | None, *, site_id=None, number_id=None
) -> bool:
    """True when a site or sender number outside `organization_id` sends as `value`
    (this site or number itself, being edited, aside)."""
    sites = Site.objects.exclude(organization_id=organization_id).exclude(pk=site_id)
    query = models.Q()
    for name in _IDENTITY_FIELDS:
        query |= models.Q(**{name: value})
    numbers = SiteSenderNumber.objects.filter(number=value).exclude(pk=number_id)
    return (
        sites.filter(query).exists()
        or numbers.exclude(site__organization_id=organization_id).exists()
    )


def default_sms_senders() -> set[str]:
    """carebell's own SMS senders (TWILIO_FROM, TWILIO_MESSAGING_SERVICE_SID): sites
    with a blank SMS sender send as them."""
    values = (
        getattr(settings, "TWILIO_FROM", ""),
        getattr(settings, "TWILIO_MESSAGING_SERVICE_SID", ""),
    )
    return {senders.spelling_of(v) for v in values if v}


@receiver(post_delete, sender=Site)
@receiver(post_delete, sender=SiteSenderNumber)
def _release_senders(sender, instance, **kwargs) -> None:
    site_id = instance.pk if sender is Site else instance.site_id
    organization_id = getattr(instance, "organization_id", None) or (
        Site.objects.filter(pk=site_id).values_list("organization_id", flat=True).first()
    )
    if organization_id is not None and Organization.objects.filter(pk=organization_id).exists():
        hold_senders({organization_id})


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
    # Two-way: a staff reply to the patient's own recent message is an answer, not an
    # unprompted text, so a site may let it go at once (0 = off: replies keep the
    # delivery window and quiet hours like every other message).
    reply_at_once_minutes = models.PositiveSmallIntegerField(
        default=0,
        help_text="A staff reply within this many minutes of the patient's own text goes "
        "at once, even outside the delivery window (0 = off).",
    )
    # What a text costs this site (reports, the group send's estimate); empty = the
    # install's CAREBELL_SMS_PRICE_PER_SEGMENT.
    sms_price_per_segment = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Price of one SMS segment, for estimates and reports.",
    )
    # Staff sign-in.
    require_two_factor_for_admins = models.BooleanField(
        default=False,
        help_text="System Administrators of this site sign in with a one-time code too.",
    )

    @property
    def price_per_segment(self):
        """What one SMS segment costs this site (a Decimal): its own price, else the
        installation's CAREBELL_SMS_PRICE_PER_SEGMENT."""
        own = self.sms_price_per_segment
        return own if own is not None else settings.SMS_PRICE_PER_SEGMENT

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
