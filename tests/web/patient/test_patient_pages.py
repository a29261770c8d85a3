"""Patient pages: signed links that do one thing and reveal nothing when wrong."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from carebell.appointments.models import Appointment, CancellationRequest
from carebell.core.vocab import ContactPointKind, Kind
from carebell.dispatch.rendering import signed_link
from carebell.inbox.models import StaffNotification
from carebell.messaging.models import MessageEvent, OutboundEvent, OutboxMessage
from carebell.people.models import ContactPoint
from carebell.sites.models import ReviewLink
from tests import factories

pytestmark = pytest.mark.django_db


def message(site, **fields) -> OutboxMessage:
    now = timezone.now()
    fields = {
        "to_address": "+12025550160",
        "channel": "sms",
        "kind": Kind.APPT_CONFIRMATION,
        "planned_at": now,
        "due_at": now,
        "status": "sent",
        "created_at": now,
        "updated_at": now,
        **fields,
    }
    return OutboxMessage.objects.create(site=site, **fields)


def path_of(link: str) -> str:
    return urlsplit(link).path


def test_the_confirm_page_lists_each_child_and_confirms_all(client, site):
    kids = [factories.make_patient(site, first_name=n) for n in ("Ana", "Ben")]
    appointments = [factories.make_appointment(k) for k in kids]
    sent = message(
        site,
        entity_type="appointment",
        entity_id=appointments[0].id,
        entity_ids=[a.id for a in appointments],
    )
    url = path_of(signed_link("confirm", sent.id))
    page = client.get(url).content.decode()
    assert "Ana" in page and "Ben" in page
    assert "Example" not in page  # first names only: the minimum needed
    client.post(url, {"answer": "confirm"})
    assert {a.status for a in type(appointments[0]).objects.all()} == {"confirmed"}


def test_the_confirm_page_can_cancel_one_child_only(client, site):
    kids = [factories.make_patient(site, first_name=n) for n in ("Ana", "Ben")]
    first, second = (factories.make_appointment(k) for k in kids)
    sent = message(
        site, entity_type="appointment", entity_id=first.id, entity_ids=[first.id, second.id]
    )
    client.post(
        path_of(signed_link("confirm", sent.id)),
        {"answer": "cancel", "appointment": [str(second.id)]},
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("booked", "cancel_requested")


@pytest.mark.parametrize("token", ["garbage", "eyJtIjoxfQ:1abc:tampered"])
def test_a_wrong_token_reveals_nothing(client, site, token):
    response = client.get(f"/p/confirm/{token}")
    assert response.status_code == 404
    assert "not valid" in response.content.decode()


def test_a_token_for_one_purpose_does_not_open_another(client, site):
    sent = message(site, channel="email", to_address="a@example.org")
    review_token = signed_link("review", sent.id).rsplit("/", 1)[1]
    assert client.post(f"/p/unsub/{review_token}").status_code == 404


def test_the_review_link_counts_one_open_and_redirects(client, site):
    ReviewLink.objects.create(
        site=site, label="Maps", url="https://reviews.example.org/maple", is_default=True
    )
    sent = message(site, kind=Kind.REVIEW_REQUEST)
    url = path_of(signed_link("review", sent.id))
    for _ in range(2):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == "https://reviews.example.org/maple"
    assert MessageEvent.objects.filter(message=sent, note="review_link_opened").count() == 1


def test_one_click_unsubscribe_opts_the_email_out_and_a_get_does_not(client, site):
    contact = factories.make_contact(factories.make_patient(site))
    factories.add_point(contact, ContactPointKind.EMAIL, "a@example.org")
    sent = message(site, channel="email", to_address="a@example.org")
    url = path_of(signed_link("unsub", sent.id))
    client.get(url)
    assert ContactPoint.objects.get().opted_out_email is False
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert ContactPoint.objects.get().opted_out_email is True


def test_a_passed_appointment_has_nothing_to_confirm(client, site):
    appointment = factories.make_appointment(
        factories.make_patient(site), starts_at=timezone.now() - dt.timedelta(hours=1)
    )
    sent = message(site, entity_type="appointment", entity_id=appointment.id)
    assert client.get(path_of(signed_link("confirm", sent.id))).status_code == 404


def confirm_link(site, *appointments) -> str:
    sent = message(
        site,
        entity_type="appointment",
        entity_id=appointments[0].id,
        entity_ids=[a.id for a in appointments] if len(appointments) > 1 else [],
    )
    return path_of(signed_link("confirm", sent.id))


def nothing_was_answered() -> bool:
    return not (
        CancellationRequest.objects.exists()
        or OutboundEvent.objects.exists()
        or StaffNotification.objects.exists()
        or Appointment.objects.exclude(status="booked").exists()
    )


@pytest.mark.parametrize("form", [{}, {"answer": ""}, {"answer": "maybe"}, {"answer": "CONFIRM"}])
def test_an_answer_that_is_neither_confirm_nor_cancel_gets_400_and_changes_nothing(
    client, site, form
):
    url = confirm_link(site, factories.make_appointment(factories.make_patient(site)))
    response = client.post(url, form)
    assert response.status_code == 400
    assert "Nothing was changed" in response.content.decode()
    assert nothing_was_answered()


def test_a_ticked_visit_the_link_does_not_list_changes_nothing(client, site):
    listed = factories.make_appointment(factories.make_patient(site, first_name="Ana"))
    other = factories.make_appointment(factories.make_patient(site, first_name="Ben"))
    url = confirm_link(site, listed, factories.make_appointment(listed.patient))
    response = client.post(url, {"answer": "cancel", "appointment": [str(other.id)]})
    assert response.status_code == 400
    assert nothing_was_answered()


def test_unticking_every_visit_answers_none_of_them(client, site):
    first, second = (factories.make_appointment(factories.make_patient(site)) for _ in range(2))
    url = confirm_link(site, first, second)
    assert 'name="choosing"' in client.get(url).content.decode()
    response = client.post(url, {"answer": "cancel", "choosing": "1"})
    assert response.status_code == 400
    assert nothing_was_answered()


@pytest.mark.parametrize("answer", ["confirm", "cancel"])
def test_a_link_for_a_passed_appointment_answers_nothing_on_post_either(client, site, answer):
    appointment = factories.make_appointment(
        factories.make_patient(site), starts_at=timezone.now() - dt.timedelta(hours=1)
    )
    response = client.post(confirm_link(site, appointment), {"answer": answer})
    assert response.status_code == 404
    assert "not valid" in response.content.decode()
    assert nothing_was_answered()


def test_a_confirm_link_replayed_confirms_once_and_says_so(client, site):
    appointment = factories.make_appointment(factories.make_patient(site))
    url = confirm_link(site, appointment)
    first = client.post(url, {"answer": "confirm"}).content.decode()
    pages = [client.post(url, {"answer": "confirm"}) for _ in range(9)]
    assert "Thank you — confirmed" in first
    assert all(p.status_code == 200 for p in pages)
    assert "You already confirmed this visit" in pages[-1].content.decode()
    assert OutboundEvent.objects.filter(event_type="appointment.confirmed").count() == 1


def test_a_cancel_link_replayed_records_one_request_and_says_so(client, site):
    appointment = factories.make_appointment(factories.make_patient(site))
    url = confirm_link(site, appointment)
    pages = [client.post(url, {"answer": "cancel"}).content.decode() for _ in range(10)]
    assert "Your cancellation was received" in pages[0]
    assert "Your cancellation request was already received" in pages[-1]
    assert CancellationRequest.objects.count() == 1
    assert StaffNotification.objects.filter(kind="cancellation").count() == 1


def test_an_automatic_cancel_link_replayed_emits_one_event(client, site):
    site.delivery.cancellation_mode = "automatic"
    site.delivery.save()
    appointment = factories.make_appointment(factories.make_patient(site))
    url = confirm_link(site, appointment)
    for _ in range(10):
        assert client.post(url, {"answer": "cancel"}).status_code == 200
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
    assert OutboundEvent.objects.filter(event_type="appointment.cancelled").count() == 1
    assert CancellationRequest.objects.count() == 1
    assert StaffNotification.objects.count() == 1
