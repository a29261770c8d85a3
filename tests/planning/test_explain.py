"""`carebell explain`: staff read what was sent, what was not, and why."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from carebell import outbox
from carebell.appointments import actions as appointment_actions
from carebell.appointments.models import Recall
from carebell.audit.models import AuditEvent
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Kind
from carebell.messaging.models import OutboxMessage
from carebell.twoway import consent
from tests.factories import set_preference
from tests.messaging.engine_setup import enable, family

pytestmark = pytest.mark.django_db


def explain(**which) -> str:
    out = io.StringIO()
    call_command("explain", stdout=out, **which)
    return out.getvalue()


def test_a_patient_without_a_preference_is_told_why_nothing_goes(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, _appointment)] = family(site, preference="", now=timezone.now())
    text = explain(patient=child.id)
    assert "not sent to contact" in text
    assert "no preference set for reminders messages" in text
    assert AuditEvent.objects.filter(action="explain", object_id=str(child.id)).exists()


def test_a_cancelled_message_says_why(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, _parent, appointment)] = family(site, now=timezone.now())
    appointment_actions.appointment_saved(appointment, None, now=timezone.now())
    appointment.status = "cancelled"
    appointment.save()
    appointment_actions.appointment_changed(
        appointment, now=timezone.now(), why=reason(Code.APPOINTMENT_CANCELLED)
    )
    message = OutboxMessage.objects.get()
    text = explain(message=message.id)
    assert "cancelled" in text and "+1202****0123" in text
    assert "why: The appointment was cancelled." in text
    assert "+12025550123" not in text


def test_an_unknown_id_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no appointment with id 999"):
        explain(appointment=999)


def nine_am_in_three_days(site) -> dt.datetime:
    day = timezone.now().astimezone(site.zone).date() + dt.timedelta(days=3)
    return dt.datetime.combine(day, dt.time(9), site.zone)


def test_a_reminder_the_daily_cap_defers_says_why_and_until_when(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}, {"hours": 2}])
    start = nine_am_in_three_days(site)
    [(child, _parent, appointment)] = family(site, now=start - dt.timedelta(days=3))
    appointment_actions.appointment_saved(appointment, None, now=timezone.now())
    text = explain(patient=child.id)
    eight = dt.datetime.combine(start.date(), dt.time(8), site.zone).astimezone(dt.UTC)
    deferred = f"deferred to {eight.isoformat()}."
    day_before = start.date() - dt.timedelta(days=1)
    assert f"why: The patient already has an automated text on {day_before}; {deferred}" in text
    assert f"would send by sms to +1202****0123 at {eight:%Y-%m-%d %H:%M} UTC" in text
    assert text.count(deferred) == 2  # the stored message and the plan


def test_a_reminder_the_caps_keep_back_is_shown_with_the_reason(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}, {"hours": 2}])
    start = nine_am_in_three_days(site) - dt.timedelta(hours=1)
    [(child, _parent, _appointment)] = family(site, now=start - dt.timedelta(days=3))
    text = explain(patient=child.id)
    assert "kept as blocked (cap), not sent by sms to +1202****0123" in text
    assert "Combined with another text to the patient the same day" in text


def test_a_recall_due_today_is_explained(site):
    enable(site, Kind.RECALL)
    [(child, parent, _appointment)] = family(site, preference="", now=timezone.now())
    set_preference(parent, "recalls", "sms")
    child.appointments.update(status="cancelled")
    Recall.objects.create(
        site=site,
        patient=child,
        reason="Vision screening",
        due_on=timezone.localdate(timezone=site.zone),
    )
    text = explain(patient=child.id)
    assert "recall about recall" in text and "would send by sms" in text
    assert "The practice's recall: Vision screening, due on" in text


def test_after_stop_and_start_explain_shows_the_reminder_the_outbox_holds(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, appointment)] = family(site, now=timezone.now())
    now = timezone.now()
    appointment_actions.appointment_saved(appointment, None, now=now)
    consent.opt_out_address(site.id, "+12025550123", "sms", source="keyword", now=now)
    consent.opt_in_address(site.id, "+12025550123", "sms", source="keyword", now=now)
    fresh = OutboxMessage.objects.get(status="scheduled")
    text = explain(patient=child.id)
    assert f"in the outbox: message {fresh.id}, scheduled for" in text
    assert "would send by sms" in text


def test_explain_says_when_the_outbox_holds_an_ended_message_for_what_planning_would_send(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, appointment)] = family(site, now=timezone.now())
    appointment_actions.appointment_saved(appointment, None, now=timezone.now())
    message = OutboxMessage.objects.get()
    outbox.cancel_messages([message.id], [], timezone.now())
    text = explain(patient=child.id)
    assert f"in the outbox: message {message.id}, cancelled — it will not be sent" in text


def test_explain_says_what_the_planner_has_yet_to_store(site):
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(child, _parent, _appointment)] = family(site, now=timezone.now())
    text = explain(patient=child.id)
    assert "not in the outbox yet: the planner stores it on its next pass" in text
