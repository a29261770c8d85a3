"""Staff notifications (SPEC §5.3): a department is told that something happened —
shown in the web app (/staff/notifications/), and emailed through the outbox when the
department has an address. The text names the patient and the appointment (its date
and time in the site's zone), so staff can act without looking the ids up."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from carebell import outbox
from carebell.core.placeholders import RenderContext, render
from carebell.core.reasons import Reason
from carebell.core.vocab import EntityType
from carebell.inbox.models import StaffNotification
from carebell.sites.models import Department, Site

TEXT_LIMIT = StaffNotification._meta.get_field("text").max_length
SUBJECT_LIMIT = 300  # the outbox's subject column


def notify_department(
    site: Site,
    department: Department | None,
    *,
    kind: str,
    subject: str,
    text: str,
    entity: tuple[str, int],
    now: dt.datetime,
) -> StaffNotification:
    """Record a notification for `department` (None: the site's staff at large) and,
    when the department has an email address, queue it there too: at once, whatever
    the patients' email window (a staff kind, see `outbox.queue_staff_email`), with
    `emailed_at` saying when it was handed to the outbox. Both in the caller's
    transaction: the email exists only if the notification does."""
    entity_type, entity_id = entity
    address = department.email if department is not None else ""
    with transaction.atomic():
        notification = StaffNotification.objects.create(
            site=site, department=department, kind=kind, text=text[:TEXT_LIMIT],
            entity_type=entity_type, entity_id=entity_id, created_at=now,
            emailed_at=now if address else None,
        )  # fmt: skip
        if address:
            outbox.queue_staff_email(
                site, address, subject[:SUBJECT_LIMIT], text,
                entity=(EntityType.STAFF_NOTIFICATION, notification.id), now=now,
            )  # fmt: skip
    return notification


def notify_cancellation(
    site: Site, appointment, why: Reason, *, via: str, now: dt.datetime
) -> StaffNotification:
    """Tell the site's cancellation department (the "track cancellations" setting)
    that a patient asked to cancel, and what carebell did about it (`why`)."""
    patient = appointment.patient
    when = render(
        "#APPTDATE# at #APPTTIME#",
        {"APPTDATE": appointment.starts_at, "APPTTIME": appointment.starts_at},
        RenderContext(language="en", time_zone=site.zone),
    ).text
    with_whom = f" with {appointment.provider_name}" if appointment.provider_name else ""
    where = f" at {appointment.location_name}" if appointment.location_name else ""
    text = (
        f"{patient.first_name} {patient.last_name} asked by {via} to cancel the appointment "
        f"on {when}{with_whom}{where} (appointment {appointment.external_id}). {why.message}"
    )
    return notify_department(
        site,
        site.delivery.cancellation_department,
        kind="cancellation",
        subject=f"{site.name}: a patient asked to cancel an appointment",
        text=text,
        entity=(EntityType.APPOINTMENT, appointment.id),
        now=now,
    )
