"""The worker takes up a group message started but left unwritten (the page's
background step died with its process) and sends it."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import GroupSend, OutboxMessage
from carebell.sends import group
from carebell.sends.messages import Texts
from carebell.sites.roles import FRONT_DESK
from tests import factories

pytestmark = pytest.mark.django_db


def test_the_worker_writes_and_sends_an_unfinished_group_message(site):
    desk = factories.make_staff(site, FRONT_DESK)
    patients = []
    for i in range(3):
        patient = factories.make_patient(site)
        contact = factories.make_contact(patient, relationship="self")
        factories.add_point(contact, ContactPointKind.MOBILE, f"+120255508{i:02d}")
        factories.set_preference(contact, "general", "sms")
        patients.append(patient)
    g = group.create(site, [p.id for p in patients], channels=["sms"], by=desk)
    group.compose(g, Texts(sms_body="#SITENAME# opens late tomorrow."), by=desk)
    group.start(g, by=desk)
    call_command("worker", "--once")
    assert GroupSend.objects.get(pk=g.pk).status == "done"
    rows = OutboxMessage.objects.filter(kind="general")
    assert rows.count() == 3 and set(rows.values_list("status", flat=True)) == {"sent"}
