"""Group and one-off emails carry an HTML part laid out and rendered as automated
emails are, and may carry their unsubscribe link, filled in when each is sent;
sent through a real SMTP server on loopback (aiosmtpd), not a mock."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.core.exceptions import ValidationError
from django.core.management import call_command

from carebell.core.vocab import ContactPointKind
from carebell.messaging.models import OutboxMessage
from carebell.people.models import ContactPoint
from carebell.sends import group, one_off
from carebell.sends.messages import Texts
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.providers.test_smtp import Mailbox, free_port

pytestmark = pytest.mark.django_db

EMAIL = Texts(
    "Closed on Friday",
    "Dear #PATIENTNAME#,\nwe are closed on Friday.\n\nTo stop these emails: #UNSUBSCRIBELINK#",
)


@pytest.fixture
def desk(site):
    return factories.make_staff(site, FRONT_DESK)


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_PROVIDER = "smtp"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield box
    controller.stop()


def emailable(site, address="ana@example.org", *, language="en", **patient):
    patient = factories.make_patient(site, **patient)
    contact = factories.make_contact(patient, relationship="self", language=language)
    factories.add_point(contact, ContactPointKind.EMAIL, address)
    factories.set_preference(contact, "general", "email")
    return patient


def sent_group(site, desk, patients, texts=EMAIL):
    g = group.create(site, [p.id for p in patients], channels=["email"], by=desk)
    group.compose(g, texts, by=desk)
    return group.run(group.start(g, by=desk))


def test_a_group_email_is_stored_with_an_html_part_and_its_link_left_for_the_send(site, desk):
    patient = emailable(site, first_name="Ana", last_name="<Lee & Co>")
    sent_group(site, desk, [patient])
    row = OutboxMessage.objects.get(patient=patient)
    assert row.body == (
        "Dear Ana <Lee & Co>,\nwe are closed on Friday.\n\nTo stop these emails: #UNSUBSCRIBELINK#"
    )
    assert row.html_body.startswith("<!doctype html>")
    # Laid out as a default email is: a paragraph per block, line breaks kept, the
    # link labelled; the patient's name escaped.
    assert "<p>Dear Ana &lt;Lee &amp; Co&gt;,<br>\nwe are closed on Friday.</p>" in row.html_body
    assert '<a href="#UNSUBSCRIBELINK#">Unsubscribe</a>' in row.html_body


def test_a_spanish_recipients_link_is_labelled_in_spanish(site, desk):
    patient = emailable(site, language="es")
    sent_group(site, desk, [patient])
    html_body = OutboxMessage.objects.get(patient=patient).html_body
    assert '<a href="#UNSUBSCRIBELINK#">Cancelar la suscripción</a>' in html_body


def test_a_text_may_not_ask_for_an_unsubscribe_link(site, desk):
    patient = emailable(site)
    factories.add_point(patient.contacts.get(), ContactPointKind.MOBILE, "+12025550123")
    g = group.create(site, [patient.id], channels=["sms"], by=desk)
    with pytest.raises(ValidationError) as refused:
        group.compose(g, Texts(sms_body="News. Stop: #UNSUBSCRIBELINK#"), by=desk)
    assert "STOP" in refused.value.message_dict["sms_body"][0]


def test_a_one_off_email_has_the_same_html_part(site, desk):
    patient = emailable(site, first_name="Ana")
    contact = patient.contacts.get()
    one_off.send(patient, contact_id=contact.id, channel="email", texts=EMAIL,
                 token="tok-one-off-1", by=desk)  # fmt: skip
    row = OutboxMessage.objects.get(patient=patient)
    assert row.status == "scheduled"
    assert "<p>Dear Ana " in row.html_body
    assert '<a href="#UNSUBSCRIBELINK#">Unsubscribe</a>' in row.html_body


def test_a_group_email_arrives_with_text_html_and_a_working_unsubscribe_link(
    site, desk, mailbox, client
):
    patient = emailable(site, first_name="Ana")
    sent_group(site, desk, [patient])
    call_command("worker", "--once")
    ((_, rcpt_tos, received),) = mailbox.received
    assert rcpt_tos == ["ana@example.org"]
    assert received["Subject"] == "Closed on Friday"
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(("plain",)).get_content()
    html_part = received.get_body(("html",)).get_content()
    # The link in the text, in the HTML and in the one-click header is the same one.
    link = received["List-Unsubscribe"].rsplit("<", 1)[1].rstrip(">")
    assert "/p/unsub/" in link
    assert plain.rstrip("\n").endswith(f"To stop these emails: {link}")
    assert f'<a href="{link}">Unsubscribe</a>' in html_part
    assert "#UNSUBSCRIBELINK#" not in plain + html_part
    row = OutboxMessage.objects.get(patient=patient)
    assert row.status == "sent" and link in row.body and link in row.html_body
    assert client.post(urlsplit(link).path).status_code == 200
    assert ContactPoint.objects.get(value="ana@example.org").opted_out_email
