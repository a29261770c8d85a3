"""A one-off message to one patient from the panel: preview with segments, send
through the outbox with its checks (a blocked one says why), once per form, audited;
refused without group_send and for another organization's patient."""

from __future__ import annotations

import pytest

from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import OutboxMessage
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories

pytestmark = pytest.mark.django_db


def patient_with(site, *, pref="sms", mobile="+12025550177", email="", opted_out=False):
    patient = factories.make_patient(site, first_name="Ana")
    contact = factories.make_contact(patient, relationship="self", first_name="Ana")
    if mobile:
        factories.add_point(contact, ContactPointKind.MOBILE, mobile, opted_out_sms=opted_out)
    if email:
        factories.add_point(contact, ContactPointKind.EMAIL, email)
    if pref:
        factories.set_preference(contact, "general", pref)
    return patient, contact


@pytest.fixture
def desk(staff_of):
    return staff_of(FRONT_DESK)


def form(who, body="Hi #PATIENTFIRSTNAME#, your forms are ready at #SITENAME#.", **extra):
    return {"contact": who.pk, "channel": "sms", "body": body, "token": "tok-123456789",
            "action": "send", **extra}  # fmt: skip


def test_the_panel_links_to_the_message_page(desk, site):
    patient, _ = patient_with(site)
    assert (
        f"/staff/patients/{patient.pk}/message/"
        in desk.get(f"/staff/patients/{patient.pk}/").content.decode()
    )


def test_a_preview_shows_the_rendered_text_and_its_segments(desk, site):
    patient, contact = patient_with(site)
    page = desk.post(f"/staff/patients/{patient.pk}/message/", form(contact, action="preview"))
    text = page.content.decode()
    assert f"Hi Ana, your forms are ready at {site.name}." in text
    assert "1 segment" in text and not OutboxMessage.objects.exists()


def test_a_message_is_sent_through_the_outbox_once_and_audited(desk, site):
    patient, contact = patient_with(site)
    url = f"/staff/patients/{patient.pk}/message/"
    assert desk.post(url, form(contact)).status_code == 302
    assert desk.post(url, form(contact)).status_code == 302  # the same form twice
    message = OutboxMessage.objects.get()
    assert (message.kind, message.channel, message.status) == ("general", "sms", "scheduled")
    assert message.body == f"Hi Ana, your forms are ready at {site.name}."
    assert (message.to_address, message.contact_id) == ("+12025550177", contact.pk)
    assert AuditEvent.objects.filter(action="send", object_type="messaging.outboxmessage").exists()


def test_an_opted_out_number_is_stored_blocked_and_the_page_says_so(desk, site):
    patient, contact = patient_with(site, opted_out=True)
    page = desk.post(f"/staff/patients/{patient.pk}/message/", form(contact), follow=True)
    assert "stored blocked (opted_out)" in page.content.decode()
    message = OutboxMessage.objects.get()
    assert (message.status, message.block_reason) == ("blocked", "opted_out")


def test_an_email_goes_only_where_the_preference_allows(desk, site):
    patient, contact = patient_with(site, pref="sms", email="ana@example.org")
    desk.post(f"/staff/patients/{patient.pk}/message/",
              form(contact, channel="email", subject="Your forms"))  # fmt: skip
    message = OutboxMessage.objects.get()
    assert (message.channel, message.status, message.block_reason) == (
        "email", "blocked", "ineligible",
    )  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        {"body": ""},
        {"body": "x" * 200_000},
        {"channel": "call"},
        {"body": "Your visit #APPTDATE#"},
        {"token": "x"},
        {"contact": "999999"},
    ],
)
def test_bad_input_is_refused_clearly_and_nothing_is_written(desk, site, bad):
    patient, contact = patient_with(site)
    page = desk.post(f"/staff/patients/{patient.pk}/message/", form(contact, **bad))
    assert page.status_code == 200 and "errors" in page.content.decode()
    assert not OutboxMessage.objects.exists()


def test_a_contact_of_another_patient_is_refused(desk, site):
    patient, _contact = patient_with(site)
    _other, other_contact = patient_with(site, mobile="+12025550178")
    page = desk.post(f"/staff/patients/{patient.pk}/message/", form(other_contact))
    assert page.status_code == 200 and not OutboxMessage.objects.exists()


def test_staff_without_group_send_are_refused(staff_of, site):
    patient, contact = patient_with(site)
    reader = staff_of(READ_ONLY)
    assert reader.post(f"/staff/patients/{patient.pk}/message/", form(contact)).status_code == 403
    assert not OutboxMessage.objects.exists()


def test_another_organizations_patient_does_not_exist(outsider, site):
    patient, contact = patient_with(site)
    url = f"/staff/patients/{patient.pk}/message/"
    assert outsider.get(url).status_code == 404
    assert outsider.post(url, form(contact)).status_code == 404
    assert not OutboxMessage.objects.exists()
