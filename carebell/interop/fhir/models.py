"""What the FHIR door keeps beside carebell's own rows: a version per resource and
the identifiers clients gave it.

A resource backed by a carebell row (a patient, a contact, an appointment, a
prescription, a fill, an outbox message) has the row's primary key as its FHIR id
and needs no record until FHIR writes it. A proposed or pending appointment has no
carebell row yet (carebell's appointments are booked, with a start): its resource is
held here, under an id starting with "h", until it is booked.
"""

from __future__ import annotations

from django.db import models

from carebell.sites.models import Site


class FhirRecord(models.Model):
    resource_type = models.CharField(max_length=32)
    fhir_id = models.CharField(max_length=64, help_text="The resource's logical id.")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    object_id = models.BigIntegerField(
        null=True, blank=True, help_text="The carebell row; None while the resource is held."
    )
    version = models.PositiveIntegerField(default=1)
    last_updated = models.DateTimeField()
    row_updated_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The row's updated_at when FHIR last wrote it: a later change "
        "(a staff edit) counts as one more version.",
    )
    held = models.JSONField(
        null=True, blank=True, help_text="The resource, while no carebell row holds it."
    )
    held_status = models.CharField(max_length=24, blank=True)
    held_patient_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["resource_type", "fhir_id"], name="fhir_id_unique"),
            models.UniqueConstraint(
                fields=["resource_type", "object_id"],
                condition=models.Q(object_id__isnull=False),
                name="fhir_object_unique",
            ),
        ]
        indexes = [models.Index(fields=["resource_type", "site", "last_updated"])]

    def __str__(self) -> str:
        return f"{self.resource_type}/{self.fhir_id}"


class FhirIdentifier(models.Model):
    """One identifier (system|value) of a resource. Unique per site and type: it
    names one resource, so 32 conditional creates racing on it make one."""

    record = models.ForeignKey(FhirRecord, on_delete=models.CASCADE, related_name="identifiers")
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    resource_type = models.CharField(max_length=32)
    system = models.CharField(max_length=254, blank=True)
    value = models.CharField(max_length=254)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["site", "resource_type", "system", "value"], name="fhir_identifier_unique"
            )
        ]
        indexes = [models.Index(fields=["resource_type", "value"])]

    def __str__(self) -> str:
        return f"{self.system}|{self.value}"
