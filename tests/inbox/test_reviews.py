"""Possible opt-outs: flagged for a person with a notification, never opted out by
carebell itself; one decision opts the number out (the text as its evidence) or
dismisses it; decided once, audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from carebell.audit.models import AuditEvent
from carebell.inbox import reviews
from carebell.inbox.models import OptOutReview, StaffNotification
from carebell.messaging.models import InboundMessage
from carebell.people.models import ContactPoint, OptOutEvent
from tests.inbox.conftest import PHONE, text

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "body", ["please stop texting me", "No más mensajes por favor", "unsubscribe me"]
)
def test_a_text_that_sounds_like_stop_waits_for_a_person(client, site, family, body):
    text(client, body)
    review = OptOutReview.objects.get()
    assert review.decision == "" and review.inbound.body == body
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is False
    note = StaffNotification.objects.get(kind="possible_opt_out")
    assert note.site == site and "Ortiz" not in note.text and body not in note.text


def test_opting_out_from_the_review_keeps_the_text_as_evidence(client, site, family, desk):
    text(client, "please stop texting me")
    review = reviews.pending_reviews(site, by=desk)[0]
    reviews.decide(review, "opted_out", by=desk)
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is True
    event = OptOutEvent.objects.get(opted_out=True)
    assert event.source == "staff" and event.detail == "please stop texting me"
    assert reviews.pending_reviews(site, by=desk) == []
    assert InboundMessage.objects.get().needs_review is False
    assert AuditEvent.objects.filter(action="review_opted_out").exists()
    with pytest.raises(ValidationError):
        reviews.decide(review, "dismissed", by=desk)


def test_dismissing_changes_no_consent(client, site, family, desk):
    text(client, "stop by later?")
    reviews.decide(reviews.pending_reviews(site, by=desk)[0], "dismissed", by=desk)
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is False
    assert not OptOutEvent.objects.exists()
    assert reviews.recent_decisions(site, by=desk)[0].decision == "dismissed"


def test_an_unknown_decision_changes_nothing(client, site, family, desk):
    text(client, "please stop")
    review = OptOutReview.objects.get()
    with pytest.raises(ValidationError):
        reviews.decide(review, "delete", by=desk)
    review.refresh_from_db()
    assert review.decision == ""


def test_a_forged_text_is_refused_and_writes_nothing(client, family):
    response = text(client, "please stop", signature="forged")
    assert response.status_code == 403
    assert not InboundMessage.objects.exists()
    assert not OptOutReview.objects.exists() and not StaffNotification.objects.exists()


def test_a_replayed_text_is_reviewed_and_notified_once(client, family):
    text(client, "please stop", sid="SM-replayed")
    text(client, "please stop", sid="SM-replayed")
    assert OptOutReview.objects.count() == 1
    assert StaffNotification.objects.filter(kind="possible_opt_out").count() == 1
