"""Department notifications (SPEC §5.3, "track cancellations"): shown in the web app,
emailed through the outbox when the department has an address, and naming the patient
and the appointment in the site's own time."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.dispatch.dispatcher import Dispatcher
from carebell.inbox.models import StaffNotification
from carebell.messaging.models import OutboxMessage
from carebell.sites.models import DeliverySettings, Department
from carebell.twoway import answers
from tests import factories
from tests.messaging.engine_setup import NOW

pytestmark = pytest.mark.django_db

#: Saturday 28 November 2026, 10:00 in New York.
STARTS = dt.datetime(2026, 11, 28, 15, 0, tzinfo=dt.UTC)


def tracked(site, email="frontdesk@example.org"):
    """The site tells its front desk about cancellations."""
    desk = Department.objects.create(site=site, name="Front Desk", email=email)
    DeliverySettings.objects.filter(site=site).update(
        track_cancellations=True, cancellation_department=desk
    )
    site.refresh_from_db()
    patient = factories.make_patient(site, first_name="Avery", last_name="Lane")
    return factories.make_appointment(patient, starts_at=STARTS, provider_name="Dr. Rivera")


def cancel(site, appointment):
    site = type(site).objects.select_related("delivery").get(pk=site.pk)
    answers.request_cancellation(site, appointment, via="sms", now=NOW)


def test_the_notice_names_the_patient_and_the_appointment_in_the_sites_time(site):
    appointment = tracked(site)
    cancel(site, appointment)
    notice = StaffNotification.objects.get()
    assert notice.text.startswith("Avery Lane asked by sms to cancel the appointment on "
                                  "Sat, Nov 28 at 10:00 AM with Dr. Rivera")  # fmt: skip
    assert appointment.external_id in notice.text
    assert (notice.entity_type, notice.entity_id) == ("appointment", appointment.id)


def test_a_department_with_an_address_gets_the_notice_by_email_through_the_outbox(site):
    cancel(site, tracked(site))
    notice = StaffNotification.objects.get()
    message = OutboxMessage.objects.get(channel="email")
    assert (message.to_address, message.status, message.body) == (
        "frontdesk@example.org", "queued", notice.text,
    )  # fmt: skip
    assert (message.entity_type, message.entity_id) == ("staff_notification", notice.id)
    assert message.patient_id is None and "asked to cancel" in message.subject


def test_the_dispatcher_sends_the_departments_email(site):
    cancel(site, tracked(site))
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch(now=NOW)
    finally:
        dispatcher.close()
    message = OutboxMessage.objects.get(channel="email")
    assert (message.status, message.provider) == ("sent", "console")


def test_a_department_without_an_address_sees_the_notice_in_the_app_only(site):
    cancel(site, tracked(site, email=""))
    assert StaffNotification.objects.count() == 1
    assert not OutboxMessage.objects.filter(channel="email").exists()
