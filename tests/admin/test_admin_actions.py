"""What the admin does beyond showing rows: replanning, site set-up, the queue's
delete action, and the audit trail in place of Django's admin history."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.core.vocab import Kind
from carebell.messaging.models import AutomatedMessage, MessageTemplate, OutboxMessage
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories
from tests.messaging.engine_setup import enable, family

pytestmark = pytest.mark.django_db


def change_url(obj) -> str:
    meta = obj._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])


def test_moving_an_appointment_in_the_admin_replans_its_reminder(admin_client, site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, _parent, appointment)] = family(site)
    appointment.starts_at = timezone.now() + dt.timedelta(days=5)
    appointment.save()
    from carebell.appointments import actions

    actions.appointment_saved(appointment, None, now=timezone.now())
    old = OutboxMessage.objects.get()
    later = (appointment.starts_at + dt.timedelta(days=2)).astimezone(site.zone)
    form = {
        "site": site.pk, "patient": appointment.patient_id, "source": appointment.source,
        "external_id": appointment.external_id, "starts_at_0": later.strftime("%Y-%m-%d"),
        "starts_at_1": later.strftime("%H:%M:%S"), "duration_minutes": 15, "status": "booked",
        "cancellation_requests-TOTAL_FORMS": 0, "cancellation_requests-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = admin_client.post(change_url(appointment), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    old.refresh_from_db()
    new = OutboxMessage.objects.exclude(id=old.id).get()
    assert (old.status, old.reasons[-1]["code"]) == ("cancelled", "appointment_moved")
    assert new.status == "scheduled" and new.event_at > old.event_at


def test_a_site_added_in_the_admin_gets_formats_and_disabled_rules(admin_client, org):
    form = {
        "organization": org.pk, "name": "Eastside Clinic", "kind": "clinic",
        "time_zone": "America/Denver", "phone_region": "US", "phone": "+13035550100",
        "providers": "{}",
        "delivery-TOTAL_FORMS": 0, "delivery-INITIAL_FORMS": 0,
        "sender_numbers-TOTAL_FORMS": 0, "sender_numbers-INITIAL_FORMS": 0,
        "departments-TOTAL_FORMS": 0, "departments-INITIAL_FORMS": 0,
        "review_links-TOTAL_FORMS": 0, "review_links-INITIAL_FORMS": 0,
    }  # fmt: skip
    response = admin_client.post(reverse("admin:sites_site_add"), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    site = org.sites.get(name="Eastside Clinic")
    assert site.delivery.require_opt_in is False
    assert MessageTemplate.objects.filter(site=site).count() > 0
    assert not AutomatedMessage.objects.filter(site=site, enabled=True).exists()


def pending_and_sent(site):
    now = timezone.now()
    common = {
        "site": site, "to_address": "+12025550180", "channel": "sms", "kind": "general",
        "planned_at": now, "due_at": now, "created_at": now, "updated_at": now,
    }  # fmt: skip
    return (
        OutboxMessage.objects.create(**common),
        OutboxMessage.objects.create(status="sent", **common),
    )


def test_front_desk_deletes_pending_messages_and_sent_ones_are_kept(client, site):
    pending, sent = pending_and_sent(site)
    client.force_login(factories.make_staff(site, FRONT_DESK))
    client.post(
        reverse("admin:messaging_outboxmessage_changelist"),
        {"action": "cancel_pending", "_selected_action": [pending.pk, sent.pk]},
    )
    pending.refresh_from_db()
    sent.refresh_from_db()
    assert (pending.status, pending.reasons[-1]["code"]) == ("cancelled", "cancelled_by_staff")
    assert sent.status == "sent"
    assert AuditEvent.objects.filter(action="cancel", object_id=str(pending.pk)).exists()


def test_read_only_staff_cannot_delete_queued_messages(client, site):
    pending, _ = pending_and_sent(site)
    client.force_login(factories.make_staff(site, READ_ONLY))
    client.post(
        reverse("admin:messaging_outboxmessage_changelist"),
        {"action": "cancel_pending", "_selected_action": [pending.pk]},
    )
    pending.refresh_from_db()
    assert pending.status == "scheduled"


def test_viewing_a_patient_is_audited_without_names_and_admin_history_stays_empty(client, site):
    patient = factories.make_patient(site, first_name="Quinn", last_name="Zebra")
    staff = factories.make_staff(site, FRONT_DESK)
    client.force_login(staff)
    assert client.get(change_url(patient)).status_code == 200
    event = AuditEvent.objects.get(action="view")
    assert (event.actor, event.object_id, event.site_id) == (staff, str(patient.pk), site.pk)
    assert "Zebra" not in str(event.detail)
    form = {"site": site.pk, "source": "carebell", "external_id": patient.external_id,
            "first_name": "Quinn", "last_name": "Zebra-Lee", "language": "en", "is_active": "on",
            "contacts-TOTAL_FORMS": 0, "contacts-INITIAL_FORMS": 0}  # fmt: skip
    client.post(change_url(patient), form)
    assert AuditEvent.objects.filter(action="change", object_id=str(patient.pk)).exists()
    assert LogEntry.objects.count() == 0
