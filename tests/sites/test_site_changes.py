"""A site's time zone or delivery settings change: the running planner and workers
see it on their next pass, and pending messages are planned again in the change's
transaction, set-based."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carebell.appointments import actions
from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, FillStep, Kind, Relationship
from carebell.messaging.models import OutboxMessage
from carebell.planning.policies import PolicyCache
from carebell.planning.runner import plan_once
from carebell.sites import actions as site_actions
from carebell.sites.models import DeliverySettings, Site
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

HONOLULU = ZoneInfo("Pacific/Honolulu")


def planned_reminders(site, families=1):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    for n in range(families):
        [(_child, _parent, appointment)] = family(site, mobile=f"+1202555{n + 300:04d}")
        actions.appointment_saved(appointment, None, now=NOW)
    return list(OutboxMessage.objects.order_by("id"))


def fresh(site) -> Site:
    return Site.objects.select_related("delivery").get(pk=site.pk)


def test_a_running_workers_policy_cache_sees_a_new_time_zone_on_its_next_batch(site):
    cache = PolicyCache()
    assert cache.for_site(fresh(site)).zone.key == "America/New_York"
    site.time_zone = "Pacific/Honolulu"
    site_actions.save_site(site, now=NOW)
    assert cache.for_site(fresh(site)).zone.key == "Pacific/Honolulu"


def test_a_time_zone_saved_without_the_entry_point_is_still_seen(site):
    cache = PolicyCache()
    cache.for_site(fresh(site))
    Site.objects.filter(pk=site.pk).update(time_zone="Pacific/Honolulu")
    assert cache.for_site(fresh(site)).zone.key == "Pacific/Honolulu"


def test_a_new_time_zone_moves_pending_reminders_into_the_new_zones_window(site):
    [before] = planned_reminders(site)
    site.time_zone = "Pacific/Honolulu"
    site_actions.save_site(site, now=NOW)
    after = OutboxMessage.objects.get()
    assert after.id == before.id and after.status == "scheduled"
    assert after.planned_at != before.planned_at
    local = after.planned_at.astimezone(HONOLULU)
    assert dt.time(8) <= local.time() <= dt.time(20)
    assert after.due_at == after.planned_at
    assert [r["code"] for r in after.events.last().reasons] == ["settings_changed", "replanned_to"]


def test_a_narrower_window_moves_pending_reminders_inside_it(site):
    [before] = planned_reminders(site)
    row = DeliverySettings.objects.get(site=site)
    row.email_sms_window_start, row.email_sms_window_end = dt.time(12), dt.time(13)
    site_actions.save_delivery_settings(row, now=NOW)
    after = OutboxMessage.objects.get()
    local = after.planned_at.astimezone(site.zone)
    assert dt.time(12) <= local.time() <= dt.time(13) and after.planned_at != before.planned_at


def test_a_settings_change_that_leaves_no_time_to_send_cancels_with_the_reasons(site):
    planned_reminders(site)  # Friday, for a Saturday appointment
    row = DeliverySettings.objects.get(site=site)
    row.delivery_days = ["sun"]  # none between now (Wednesday) and the appointment
    site_actions.save_delivery_settings(row, now=NOW)
    message = OutboxMessage.objects.get()
    assert message.status == "cancelled" and message.dedupe_key is None
    codes = [r["code"] for r in message.reasons]
    assert codes[0] == "settings_changed" and "no_allowed_time" in codes


def test_restricted_words_do_not_replan_anything(site):
    [before] = planned_reminders(site)
    row = DeliverySettings.objects.get(site=site)
    row.restricted_words = ["marijuana"]
    site_actions.save_delivery_settings(row, now=NOW)
    assert list(OutboxMessage.objects.get().events.values_list("status", flat=True)) == list(
        before.events.values_list("status", flat=True)
    )


def test_a_pending_pharmacy_notice_moves_to_the_new_zones_morning(pharmacy):
    enable(pharmacy, Kind.RX_READY)
    patient = factories.make_patient(pharmacy)
    contact = factories.make_contact(patient, relationship=Relationship.SELF)
    factories.add_point(contact, ContactPointKind.EMAIL, "ada@example.org")
    factories.set_preference(contact, "rx_ready", "email")
    rx = factories.make_prescription(patient)
    at = NOW - dt.timedelta(hours=1)
    factories.make_fill(rx, filled_on=at.date(), step=FillStep.LABEL_PRINTED, label_printed_at=at)
    plan_once(now=NOW)
    assert OutboxMessage.objects.get().planned_at == NOW  # 10:00 in New York
    pharmacy.time_zone = "Pacific/Honolulu"  # 05:00 there
    site_actions.save_site(pharmacy, now=NOW)
    moved = OutboxMessage.objects.get()
    assert moved.planned_at.astimezone(HONOLULU).time() == dt.time(8)


def test_bad_settings_are_refused_and_replan_nothing(site):
    [before] = planned_reminders(site)
    row = DeliverySettings.objects.get(site=site)
    row.email_sms_window_start, row.email_sms_window_end = dt.time(12), dt.time(9)
    with pytest.raises(ValidationError, match="must start before it ends"):
        site_actions.save_delivery_settings(row, now=NOW)
    assert DeliverySettings.objects.get(site=site).email_sms_window_start == dt.time(8)
    assert OutboxMessage.objects.get().planned_at == before.planned_at


def test_a_bad_time_zone_is_refused(site):
    site.time_zone = "Mars/Olympus_Mons"
    with pytest.raises(ValidationError):
        site_actions.save_site(site, now=NOW)
    assert fresh(site).time_zone == "America/New_York"


def test_replanning_a_site_costs_the_same_queries_for_one_or_many_pending_messages(site):
    planned_reminders(site, families=1)
    with CaptureQueriesContext(connection) as one:
        site.time_zone = "Pacific/Honolulu"
        site_actions.save_site(site, now=NOW)
    other = factories.make_site(name="Bigger")
    planned_reminders(other, families=8)
    assert OutboxMessage.objects.filter(site=other).count() == 8
    with CaptureQueriesContext(connection) as many:
        other.time_zone = "Pacific/Honolulu"
        site_actions.save_site(other, now=NOW)
    assert len(many.captured_queries) == len(one.captured_queries)


def test_a_change_is_audited_by_field_name(site):
    site.time_zone = "Pacific/Honolulu"
    site_actions.save_site(site, now=NOW)
    event = AuditEvent.objects.get(action="change", object_id=str(site.id))
    assert event.detail["fields"] == ["time_zone"]


def settings_form(row: DeliverySettings, **changes) -> dict:
    form = {}
    for name, value in {**model_to_dict(row), **changes}.items():
        if isinstance(value, list | dict):
            form[name] = json.dumps(value)
        elif isinstance(value, bool):
            if value:
                form[name] = "on"
        elif value is None:
            form[name] = ""
        else:
            form[name] = value.strftime("%H:%M") if isinstance(value, dt.time) else value
    return form


def test_delivery_settings_changed_in_the_admin_replan_pending_messages(admin_client, site):
    [before] = planned_reminders(site)
    row = DeliverySettings.objects.get(site=site)
    url = reverse("admin:sites_deliverysettings_change", args=[row.pk])
    form = settings_form(row, email_sms_window_start=dt.time(12), email_sms_window_end=dt.time(13))
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    after = OutboxMessage.objects.get()
    assert after.planned_at != before.planned_at
    assert after.planned_at.astimezone(site.zone).time() >= dt.time(12)
    assert AuditEvent.objects.filter(action="change", object_id=str(row.pk)).count() == 1
