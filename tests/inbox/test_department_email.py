"""A department's notifications by email: through the outbox, at once even outside
the patients' email window (a notice to staff is of a staff kind), with `emailed_at`
set; a department without an address sees them only in the app."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.dispatch.dispatcher import Dispatcher
from carebell.inbox.models import StaffNotification
from carebell.inbox.notifications import notify_department
from carebell.messaging.models import OutboxMessage
from carebell.sites.models import Department
from carebell.sites.roles import FRONT_DESK
from tests import factories

pytestmark = pytest.mark.django_db

#: 23:30 in New York: outside the 08:00–20:00 email window and in quiet hours.
LATE = dt.datetime(2026, 11, 26, 4, 30, tzinfo=dt.UTC)


def notify(site, email="desk@example.org", now=LATE):
    desk = Department.objects.create(site=site, name="Front Desk", email=email)
    return notify_department(
        site, desk, kind="possible_opt_out", subject="A possible opt-out",
        text="A patient wrote: please stop.", entity=("conversation", 7), now=now,
    )  # fmt: skip


def dispatch(now):
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch(now=now)
    finally:
        dispatcher.close()


def test_the_email_is_queued_as_a_notice_to_staff_and_emailed_at_is_set(site):
    notice = notify(site)
    message = OutboxMessage.objects.get()
    assert (message.kind, message.to_address, message.status) == (
        "staff_notice", "desk@example.org", "queued",
    )  # fmt: skip
    assert (message.entity_type, message.entity_id) == ("staff_notification", notice.id)
    assert notice.emailed_at == LATE and StaffNotification.objects.get().emailed_at == LATE


def test_a_notice_to_staff_goes_at_night_while_a_patients_email_waits(site):
    notify(site)
    dispatch(LATE)
    message = OutboxMessage.objects.get()
    assert (message.status, message.sent_at) == ("sent", LATE)


def test_a_department_without_an_address_is_told_in_the_app_only(site, client):
    notice = notify(site, email="")
    assert notice.emailed_at is None and not OutboxMessage.objects.exists()
    user = factories.make_staff(site, FRONT_DESK)
    client.force_login(user)
    page = client.get("/staff/notifications/").content.decode()
    assert "A patient wrote: please stop." in page


def test_staff_notices_are_not_offered_as_message_formats(site):
    from carebell.formats.defaults import all_defaults
    from carebell.web.staff.format_forms import kind_choices

    assert "staff_notice" not in {value for value, _label in kind_choices()}
    assert all(d.kind != "staff_notice" for d in all_defaults())
