"""`carebell explain`: staff read what was sent, what was not, and why."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.core.reasons import Code, reason
from carebell.core.vocab import Kind
from carebell.messaging import actions
from carebell.messaging.models import OutboxMessage
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
    actions.appointment_saved(appointment, None, now=timezone.now())
    appointment.status = "cancelled"
    appointment.save()
    actions.appointment_changed(
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
