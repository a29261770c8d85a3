"""Appointments (clinics), cancellation requests and recalls."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from carebell.core.vocab import AppointmentStatus
from carebell.fields import TimeStamped, choices, in_enum
from carebell.people.models import Contact, Patient
from carebell.sites.models import Site


class Appointment(TimeStamped):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="appointments")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="appointments")
    source = models.CharField(max_length=32, default="carebell")
    external_id = models.CharField(max_length=64)
    starts_at = models.DateTimeField()
    duration_minutes = models.PositiveSmallIntegerField(default=15)
    appointment_type = models.CharField(max_length=64, blank=True)
    provider_code = models.CharField(max_length=64, blank=True)
    provider_name = models.CharField(max_length=200, blank=True)
    location_code = models.CharField(max_length=64, blank=True)
    location_name = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=20, choices=choices(AppointmentStatus), default=AppointmentStatus.BOOKED
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "source", "external_id"], name="appointment_external_id_unique"
            ),
            models.CheckConstraint(
                condition=in_enum("status", AppointmentStatus), name="appointment_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["site", "starts_at"])]

    def __str__(self) -> str:
        return f"Appointment {self.external_id}"


class CancellationRequest(TimeStamped):
    """A patient's request to cancel, accepted or refused (SPEC §5.3)."""

    appointment = models.ForeignKey(
        Appointment, on_delete=models.PROTECT, related_name="cancellation_requests"
    )
    contact = models.ForeignKey(Contact, null=True, on_delete=models.SET_NULL, related_name="+")
    received_at = models.DateTimeField()
    via = models.CharField(max_length=16, help_text="sms, link or call")
    accepted = models.BooleanField()
    reason = models.CharField(max_length=64, blank=True)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    def __str__(self) -> str:
        return f"Cancellation request for {self.appointment_id}"


class Recall(TimeStamped):
    """A visit the patient is due for (by age or since the last visit)."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="recalls")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="recalls")
    reason = models.CharField(max_length=100)
    due_on = models.DateField()
    completed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"Recall {self.reason} due {self.due_on}"
