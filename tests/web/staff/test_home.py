"""The staff home page: what needs attention today at the current site."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from carebell.audit.models import AuditEvent
from carebell.inbox.models import StaffNotification
from carebell.messaging.models import InboundMessage, OutboxMessage
from carebell.sites.roles import FRONT_DESK, READ_ONLY

pytestmark = pytest.mark.django_db


def message(site, status="scheduled", **fields):
    now = timezone.now()
    values = {
        "site": site, "to_address": "+12025550190", "channel": "sms", "kind": "appt_reminder",
        "planned_at": now, "due_at": now, "status": status, "created_at": now,
        "updated_at": now, **fields,
    }  # fmt: skip
    return OutboxMessage.objects.create(**values)


def test_it_counts_todays_queue_and_failures_of_the_site_only(staff_of, site, other_org_site):
    now = timezone.now()
    message(site, due_at=now - dt.timedelta(hours=2))
    message(site, "sent")
    message(site, "failed", error_code="30003")
    message(other_org_site, "failed", error_code="99999")
    page = staff_of(FRONT_DESK).get("/staff/").content.decode()
    assert "Scheduled" in page and "Sent" in page
    assert "30003: 1" in page and "99999" not in page
    assert "due and waiting" in page


def test_it_shows_unread_notifications_and_opt_outs_to_review(staff_of, site, other_org_site):
    now = timezone.now()
    StaffNotification.objects.create(
        site=site, kind="cancel", text="Visit cancelled", created_at=now
    )
    StaffNotification.objects.create(
        site=other_org_site, kind="cancel", text="Theirs cancelled", created_at=now
    )
    InboundMessage.objects.create(
        site=site, channel="sms", provider="sim", provider_message_id="a", from_address="+1",
        to_address="+2", body="please no more", received_at=now,
        intent=InboundMessage.Intent.POSSIBLE_OPT_OUT, needs_review=True,
    )  # fmt: skip
    client = staff_of(FRONT_DESK)
    page = client.get("/staff/").content.decode()
    assert "Visit cancelled" in page and "Theirs cancelled" not in page
    assert "Possible opt-outs to review" in page
    assert AuditEvent.objects.filter(actor=client.user, action="list", site_id=site.pk).exists()


def test_a_reader_sees_the_queue_but_not_the_inbox(staff_of, site):
    StaffNotification.objects.create(
        site=site, kind="cancel", text="Visit cancelled", created_at=timezone.now()
    )
    page = staff_of(READ_ONLY).get("/staff/").content.decode()
    assert "Today&#x27;s queue" in page or "Today's queue" in page
    assert "Visit cancelled" not in page


def test_times_are_shown_in_the_sites_zone_and_named(staff_of, site):
    page = staff_of(FRONT_DESK).get("/staff/").content.decode()
    assert "America/New_York" in page
    assert "10:00" in page  # 15:00 UTC on the test calendar
