"""An automated message's own delivery settings and drug filter (SPEC §4, §5.4):
the planner times its messages by the rule's window and days, the send-time checks
keep that timing, and a rule that names drug classes reminds only those drugs."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.core.schedule import drug_classes, in_drug_classes
from carebell.core.vocab import DeaSchedule, Kind, OutboxStatus, Weekday
from carebell.core.windows import DeliverySettings, TimeWindow, with_override
from carebell.dispatch.checks import check_at_send
from carebell.dispatch.rows import load_claimed
from carebell.messaging.models import OutboxMessage
from carebell.planning.policies import PolicyCache
from tests import factories
from tests.messaging.engine_setup import NOW, enable, family
from tests.planning.test_appointment_planning import plan
from tests.planning.test_planning_daily import TODAY, refill, rerun_daily
from tests.planning.test_planning_events import reachable

pytestmark = pytest.mark.django_db

SITE = DeliverySettings(zone="America/New_York")


# The pure rules


def test_an_override_replaces_the_window_and_the_days_it_names():
    changed = with_override(
        SITE,
        {
            "email_sms_window_start": "17:00",
            "email_sms_window_end": "19:30",
            "delivery_days": ["mon", "tue"],
        },
    )
    assert changed.email_sms_window == TimeWindow(dt.time(17), dt.time(19, 30))
    assert changed.delivery_days == frozenset({Weekday.MON, Weekday.TUE})
    assert changed.call_window == SITE.call_window


@pytest.mark.parametrize(
    "override",
    [
        {},
        {"email_sms_window_start": "19:00", "email_sms_window_end": "08:00"},
        {"email_sms_window_start": "7 pm", "email_sms_window_end": "20:00"},
        {"email_sms_window_start": "09:00"},
        {"delivery_days": ["someday"]},
        {"delivery_days": "mon"},
    ],
)
def test_an_unreadable_or_partial_override_keeps_the_site_settings(override):
    assert with_override(SITE, override) == SITE


def test_drug_classes_name_maintenance_and_the_controlled_class():
    assert drug_classes(True, DeaSchedule.NONE) == {"maintenance"}
    assert drug_classes(False, DeaSchedule.C4) == {"non_maintenance", "controlled"}
    assert drug_classes(True, DeaSchedule.C2) == {"maintenance", "c2"}
    assert in_drug_classes(frozenset(), False, DeaSchedule.C2)
    assert in_drug_classes(frozenset({"controlled"}), True, DeaSchedule.C3)
    assert not in_drug_classes(frozenset({"controlled"}), True, DeaSchedule.NONE)
    assert not in_drug_classes(frozenset({"c2"}), True, DeaSchedule.C5)


# The planner and the send-time checks


def _evening_rule(site):
    rule = enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    rule.settings_override = {"email_sms_window_start": "18:00", "email_sms_window_end": "20:00"}
    rule.save()
    return rule


def test_a_rule_with_its_own_window_plans_inside_it(site):
    _evening_rule(site)
    family(site)
    plan(site)
    local = OutboxMessage.objects.get().planned_at.astimezone(site.zone)
    assert dt.time(18) <= local.time() < dt.time(20)


def test_a_rule_without_an_override_keeps_the_site_window(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    family(site)
    plan(site)
    local = OutboxMessage.objects.get().planned_at.astimezone(site.zone)
    assert local.time() < dt.time(18)  # the site's window opens at 08:00: planned earlier


def test_the_send_time_check_keeps_a_message_inside_its_rules_window(site):
    _evening_rule(site)
    family(site)
    plan(site)
    message = OutboxMessage.objects.get()
    at_send = message.planned_at + dt.timedelta(minutes=30)  # 18:30 and later: site says no
    site.delivery.email_sms_window_end = dt.time(17)
    site.delivery.save()
    verdicts = check_at_send(load_claimed([message.id]), at_send, PolicyCache())
    assert message.id not in verdicts


def test_outside_its_rules_window_a_message_is_moved_into_it(site):
    _evening_rule(site)
    family(site)
    plan(site)
    message = OutboxMessage.objects.get()
    morning = dt.datetime.combine(
        message.planned_at.astimezone(site.zone).date(), dt.time(9), site.zone
    )
    verdict = check_at_send(load_claimed([message.id]), morning, PolicyCache())[message.id]
    assert verdict.status == OutboxStatus.SCHEDULED
    assert verdict.defer_to.astimezone(site.zone).time() == dt.time(18)


def test_a_refill_rule_for_controlled_drugs_skips_the_others(pharmacy):
    rule = enable(pharmacy, Kind.REFILL_DUE)
    rule.filters = {"drug_classes": ["controlled"]}
    rule.save()
    pharmacy.delivery.refill_controlled = True
    pharmacy.delivery.save()
    due = TODAY + dt.timedelta(days=3)
    plain = factories.make_patient(pharmacy, first_name="Plain")
    controlled = factories.make_patient(pharmacy, first_name="Controlled")
    for patient in (plain, controlled):
        reachable(patient, "refill_reminder", "email")
    refill(plain, due)
    kept = refill(controlled, due, dea_schedule=DeaSchedule.C4)
    rerun_daily(NOW)
    assert list(OutboxMessage.objects.values_list("patient_id", "entity_id")) == [
        (controlled.id, kept.id)
    ]


def test_a_ready_notice_rule_for_maintenance_drugs_skips_acute_ones(pharmacy):
    from tests.planning.test_planning_events import ready_fill, run

    rule = enable(pharmacy, Kind.RX_READY)
    rule.filters = {"drug_classes": ["maintenance"]}
    rule.save()
    chronic = factories.make_patient(pharmacy, first_name="Chronic")
    acute = factories.make_patient(pharmacy, first_name="Acute")
    for patient in (chronic, acute):
        reachable(patient, "rx_ready", "email")
    ready_fill(chronic)
    ready_fill(acute, rx={"is_maintenance": False})
    run(NOW)
    assert list(OutboxMessage.objects.values_list("patient_id", flat=True)) == [chronic.id]
