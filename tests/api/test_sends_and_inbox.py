"""Group messages, one-off messages, conversations and replies through the API."""

from __future__ import annotations

import pytest
from django.utils import timezone

from carebell.inbox import conversations
from carebell.messaging.models import GroupSend, OutboxMessage
from carebell.sites.roles import FRONT_DESK, READ_ONLY
from tests import factories
from tests.api.conftest import assert_problem


@pytest.fixture
def reachable(site):
    patient = factories.make_patient(site)
    contact = factories.make_contact(patient)
    factories.add_point(contact, "mobile", "+12025550142")
    factories.add_point(contact, "email", "ana@example.org")
    return patient, contact


def test_a_group_message_from_draft_to_start(api_as, site, reachable):
    api = api_as(FRONT_DESK)
    patient, _contact = reachable
    created = api.post(f"/api/v1/sites/{site.pk}/group-sends", {"patient_ids": [patient.pk]})
    assert created.status_code == 201, created.content
    send_id = created.json()["id"]
    texts = api.post(
        f"/api/v1/group-sends/{send_id}/texts",
        {
            "channels": ["email"],
            "email_subject": "Closed Friday",
            "email_body": "We are closed on Friday.",
        },
    )
    assert texts.status_code == 200, texts.content
    summary = api.get(f"/api/v1/group-sends/{send_id}/summary").json()
    assert summary["patients"] == 1
    started = api.post(f"/api/v1/group-sends/{send_id}/start")
    assert started.status_code == 200, started.content
    assert GroupSend.objects.get(pk=send_id).status == "sending"
    assert api.get(f"/api/v1/group-sends/{send_id}").json()["progress"]["total"] == 1


def test_group_messages_need_group_send_and_stay_in_the_organization(
    api_as, outsider_api, site, reachable
):
    patient, _contact = reachable
    assert_problem(
        api_as(READ_ONLY).post(
            f"/api/v1/sites/{site.pk}/group-sends", {"patient_ids": [patient.pk]}
        ),
        403,
    )
    assert_problem(
        outsider_api.post(f"/api/v1/sites/{site.pk}/group-sends", {"patient_ids": [patient.pk]}),
        404,
    )
    other = factories.make_patient(factories.make_site())
    assert_problem(
        api_as(FRONT_DESK).post(
            f"/api/v1/sites/{site.pk}/group-sends", {"patient_ids": [other.pk]}
        ),
        422,
    )


def test_a_one_off_message_is_queued_once_per_idempotency_key(api_as, reachable):
    api = api_as(FRONT_DESK)
    patient, contact = reachable
    body = {
        "contact_id": contact.pk,
        "channel": "email",
        "email_subject": "Your forms",
        "email_body": "Please bring your forms.",
    }
    first = api.post(
        f"/api/v1/patients/{patient.pk}/messages", body, {"Idempotency-Key": "forms-ana-1"}
    )
    assert first.status_code == 201, first.content
    again = api.post(
        f"/api/v1/patients/{patient.pk}/messages", body, {"Idempotency-Key": "forms-ana-1"}
    )
    assert again.json() == first.json()
    assert OutboxMessage.objects.filter(patient=patient).count() == 1


def test_conversations_and_a_reply(api_as, site, reachable):
    api = api_as(FRONT_DESK)
    conversation = conversations.record_arrival(site, "+12025550142", timezone.now())
    listed = api.get(f"/api/v1/sites/{site.pk}/conversations").json()
    assert [c["id"] for c in listed["items"]] == [conversation.pk]
    thread = api.get(f"/api/v1/sites/{site.pk}/conversations/{conversation.pk}").json()
    assert thread["conversation"]["address"] == "+12025550142"
    sent = api.post(
        f"/api/v1/sites/{site.pk}/conversations/{conversation.pk}/replies",
        {"body": "We will call you back today.", "seen_reply_id": thread["last_reply_id"]},
    )
    assert sent.status_code == 201, sent.content
    assert OutboxMessage.objects.get(pk=sent.json()["message_id"]).to_address == "+12025550142"
    assert_problem(
        api.post(f"/api/v1/sites/{site.pk}/conversations/{conversation.pk}/replies", {"body": ""}),
        422,
    )


def test_the_inbox_needs_work_inbox_and_stays_in_the_organization(api_as, outsider_api, site):
    conversation = conversations.record_arrival(site, "+12025550142", timezone.now())
    assert_problem(api_as(READ_ONLY).get(f"/api/v1/sites/{site.pk}/conversations"), 403)
    assert_problem(
        outsider_api.get(f"/api/v1/sites/{site.pk}/conversations/{conversation.pk}"), 404
    )
