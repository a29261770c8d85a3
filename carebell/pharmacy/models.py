"""Prescriptions and their fills (SPEC §5.4)."""

from __future__ import annotations

from django.db import models

from carebell.core.vocab import DeaSchedule, FillStep, PrescriptionStatus
from carebell.fields import TimeStamped, choices, in_enum
from carebell.people.models import Patient
from carebell.sites.models import Site


class Prescription(TimeStamped):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="prescriptions")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="prescriptions")
    source = models.CharField(max_length=32, default="carebell")
    rx_number = models.CharField(max_length=32)
    drug_name = models.CharField(max_length=200)
    ndc = models.CharField(max_length=16, blank=True)
    is_maintenance = models.BooleanField(default=True)
    dea_schedule = models.CharField(
        max_length=2, choices=choices(DeaSchedule), default=DeaSchedule.NONE, blank=True
    )
    prescriber_name = models.CharField(max_length=200, blank=True)
    refills_authorized = models.PositiveSmallIntegerField(default=0)
    refills_remaining = models.PositiveSmallIntegerField(default=0)
    days_supply = models.PositiveSmallIntegerField(default=30)
    status = models.CharField(
        max_length=16, choices=choices(PrescriptionStatus), default=PrescriptionStatus.ACTIVE
    )
    written_on = models.DateField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "source", "rx_number"], name="rx_number_unique"
            ),
            models.CheckConstraint(
                condition=in_enum("dea_schedule", DeaSchedule), name="dea_valid"
            ),
            models.CheckConstraint(
                condition=in_enum("status", PrescriptionStatus), name="rx_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(refills_remaining__lte=models.F("refills_authorized")),
                name="refills_remaining_lte_authorized",
            ),
        ]
        indexes = [models.Index(fields=["site", "status"])]

    def __str__(self) -> str:
        return f"Rx {self.rx_number}"


class Fill(TimeStamped):
    """One dispensing of a prescription, with the time it reached each step."""

    prescription = models.ForeignKey(Prescription, on_delete=models.PROTECT, related_name="fills")
    fill_number = models.PositiveSmallIntegerField(default=0, help_text="0 = original fill.")
    filled_on = models.DateField()
    days_supply = models.PositiveSmallIntegerField()
    step = models.CharField(max_length=24, choices=choices(FillStep), default=FillStep.RECEIVED)
    received_at = models.DateTimeField(null=True, blank=True)
    insurance_approved_at = models.DateTimeField(null=True, blank=True)
    verified_for_fill_at = models.DateTimeField(null=True, blank=True)
    label_printed_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    picked_up_at = models.DateTimeField(null=True, blank=True)
    returned_to_stock_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["prescription", "fill_number"], name="fill_number_unique"
            ),
            models.CheckConstraint(condition=in_enum("step", FillStep), name="fill_step_valid"),
        ]
        indexes = [
            # Every planner pass looks for fills waiting at the counter; most fills
            # were picked up long ago, so only the waiting ones are indexed.
            models.Index(
                fields=["step"],
                condition=models.Q(
                    step__in=["insurance_approved", "verified_for_fill", "label_printed", "ready"]
                ),
                name="fill_awaiting_pickup",
            ),
            models.Index(fields=["picked_up_at"], name="fill_picked_up_at"),
        ]

    def __str__(self) -> str:
        return f"Fill {self.fill_number} of {self.prescription_id}"

    def reached_at(self, step: FillStep):
        """When this fill reached `step`, or None."""
        return getattr(self, f"{step.value}_at")
