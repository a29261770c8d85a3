"""Verification codes (SPEC §3.5): 6 digits from a CSPRNG, 10 minutes, single use, 5
wrong tries, 3 codes an hour, stored hashed and never logged; the verified flag with
when and how, lost when the value changes."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.utils import timezone

from carebell.appointments import actions as appointments
from carebell.audit.models import AuditEvent
from carebell.core.vocab import ContactPointKind, Kind
from carebell.messaging.models import OutboxMessage
from carebell.outbox import CODE_REMOVED
from carebell.people import actions as people
from carebell.people import verification
from carebell.people.models import ContactPoint, VerificationCode
from carebell.sites.models import DeliverySettings
from tests import factories
from tests.messaging.engine_setup import enable, family

pytestmark = pytest.mark.django_db

NUMBER = "+12025550123"


@pytest.fixture
def mobile(site):
    contact = factories.make_contact(factories.make_patient(site), language="en")
    return factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)


def sent_digits(issued) -> str:
    """The code as the person receives it: read from the message that carries it."""
    body = OutboxMessage.objects.get(id=issued.message_id).body
    return re.search(r"\b(\d{6})\b", body).group(1)


def other_than(digits: str) -> str:
    return f"{(int(digits) + 1) % 10**6:06d}"


def test_a_code_is_six_digits_sent_at_once_by_text(mobile):
    issued = verification.issue_code(mobile, system="test")
    message = OutboxMessage.objects.get(id=issued.message_id)
    assert (message.kind, message.channel, message.status) == ("verification", "sms", "queued")
    assert (message.to_address, message.contact_point_id) == (NUMBER, mobile.id)
    assert message.due_at <= timezone.now() and re.fullmatch(r"\d{6}", sent_digits(issued))
    assert "10 minutes" in message.body


def test_an_email_gets_its_code_and_the_patient_page_link(site):
    contact = factories.make_contact(factories.make_patient(site))
    email = factories.add_point(contact, ContactPointKind.EMAIL, "pat@example.org")
    issued = verification.issue_code(email, system="test")
    message = OutboxMessage.objects.get(id=issued.message_id)
    assert message.channel == "email" and issued.verify_url in message.body
    assert "/p/verify/" in issued.verify_url and message.subject


def test_the_digits_are_stored_hashed_and_never_logged(mobile, caplog):
    caplog.set_level(logging.DEBUG)
    issued = verification.issue_code(mobile, system="test")
    digits = sent_digits(issued)
    verification.check_code(mobile, other_than(digits), method="staff", system="test")
    verification.check_code(mobile, digits, method="staff", system="test")
    row = VerificationCode.objects.values().get()
    assert all(digits not in str(value) for value in row.values())
    assert len(row["code_hash"].partition("$")[2]) == 64
    assert digits not in caplog.text
    assert all(digits not in str(e.detail) for e in AuditEvent.objects.all())


def test_sending_the_code_logs_no_digits(mobile, caplog):
    from carebell.dispatch.dispatcher import Dispatcher

    caplog.set_level(logging.DEBUG)
    issued = verification.issue_code(mobile, system="test")
    digits = sent_digits(issued)
    dispatcher = Dispatcher()
    try:
        dispatcher.process_batch()
    finally:
        dispatcher.close()
    sent = OutboxMessage.objects.get(id=issued.message_id)
    assert sent.status in ("sent", "delivered")
    assert caplog.records and digits not in caplog.text
    # Once handed to the provider the digits leave the outbox too: staff reading the
    # queue or the inbox, the API and backups never see them.
    assert digits not in sent.body and sent.body == CODE_REMOVED


def test_the_right_code_verifies_with_when_and_how(mobile):
    issued = verification.issue_code(mobile, system="test")
    checked = verification.check_code(mobile, sent_digits(issued), method="staff", system="t")
    assert checked.verified
    point = ContactPoint.objects.get()
    assert point.verified_at is not None and point.verified_method == "staff"


def test_a_code_works_once(mobile):
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    assert verification.check_code(mobile, digits, method="staff", system="t").verified
    again = verification.check_code(mobile, digits, method="staff", system="t")
    assert again.outcome is verification.Outcome.NO_CODE


def test_a_code_expires_after_ten_minutes(mobile):
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=10, seconds=1), tick=False):
        checked = verification.check_code(mobile, digits, method="staff", system="t")
    assert checked.outcome is verification.Outcome.EXPIRED
    assert ContactPoint.objects.get().verified_at is None


def test_a_code_still_works_just_before_ten_minutes(mobile):
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=9, seconds=50), tick=False):
        assert verification.check_code(mobile, digits, method="staff", system="t").verified


def test_five_wrong_tries_kill_the_code(mobile):
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    wrong = other_than(digits)
    outcomes = [
        verification.check_code(mobile, wrong, method="staff", system="t") for _ in range(5)
    ]
    assert [c.tries_left for c in outcomes] == [4, 3, 2, 1, 0]
    assert outcomes[-1].outcome is verification.Outcome.LOCKED
    last = verification.check_code(mobile, digits, method="staff", system="t")
    assert last.outcome is verification.Outcome.LOCKED
    assert ContactPoint.objects.get().verified_at is None


def test_malformed_input_spends_a_try_and_verifies_nothing(mobile):
    verification.issue_code(mobile, system="test")
    checked = verification.check_code(mobile, "12 34 56'; --", method="staff", system="t")
    assert checked.outcome is verification.Outcome.WRONG
    assert VerificationCode.objects.get().wrong_tries == 1


def test_three_codes_an_hour_then_none(mobile):
    for _ in range(3):
        verification.issue_code(mobile, system="test")
    with pytest.raises(ValidationError, match="last hour"):
        verification.issue_code(mobile, system="test")
    assert VerificationCode.objects.count() == 3
    assert OutboxMessage.objects.count() == 3
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=61), tick=False):
        verification.issue_code(mobile, system="test")
    assert VerificationCode.objects.count() == 4


def test_only_the_newest_code_counts(mobile):
    first = sent_digits(verification.issue_code(mobile, system="test"))
    second = sent_digits(verification.issue_code(mobile, system="test"))
    if first != second:
        checked = verification.check_code(mobile, first, method="staff", system="t")
        assert not checked.verified
    assert verification.check_code(mobile, second, method="staff", system="t").verified


def test_a_home_phone_or_an_opted_out_number_gets_no_code(site, mobile):
    home = factories.add_point(mobile.contact, ContactPointKind.HOME, "+12025550188")
    with pytest.raises(ValidationError):
        verification.issue_code(home, system="test")
    ContactPoint.objects.filter(id=mobile.id).update(opted_out_sms=True)
    with pytest.raises(ValidationError, match="opted out"):
        verification.issue_code(mobile, system="test")
    assert OutboxMessage.objects.count() == 0 and VerificationCode.objects.count() == 0


def test_a_changed_number_loses_its_verification_and_its_code(mobile):
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    assert verification.check_code(mobile, digits, method="staff", system="t").verified
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    point = ContactPoint.objects.get()
    point.value = "+12025550177"
    people.save_contact_point(point)
    point.refresh_from_db()
    assert (point.verified_at, point.verified_method) == (None, "")
    checked = verification.check_code(point, digits, method="staff", system="t")
    assert checked.outcome is verification.Outcome.NO_CODE


def test_a_reply_with_the_code_verifies_the_number(mobile):
    digits = sent_digits(verification.issue_code(mobile, system="test"))
    assert verification.check_reply([mobile], f" {digits} ", timezone.now())
    assert ContactPoint.objects.get().verified_method == "reply"


def test_a_text_that_is_no_code_is_left_alone(mobile):
    verification.issue_code(mobile, system="test")
    assert not verification.check_reply([mobile], "thanks!", timezone.now())
    assert not verification.check_reply([mobile], "1234567", timezone.now())
    assert VerificationCode.objects.get().wrong_tries == 0


def test_verifying_plans_again_what_was_held_back_as_unverified(site):
    DeliverySettings.objects.filter(site=site).update(only_verified=True)
    site.delivery.refresh_from_db()
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    [(_child, parent, appointment)] = family(site)
    appointments.appointment_saved(appointment, None, now=timezone.now())
    assert not OutboxMessage.objects.filter(kind=Kind.APPT_REMINDER).exists()
    point = parent.points.get()
    digits = sent_digits(verification.issue_code(point, system="test"))
    verification.check_code(point, digits, method="staff", system="t")
    reminder = OutboxMessage.objects.get(kind=Kind.APPT_REMINDER)
    assert (reminder.status, reminder.to_address) == ("scheduled", NUMBER)


def test_a_patient_page_link_names_its_code_and_expires(mobile):
    issued = verification.issue_code(mobile, system="test")
    token = issued.verify_url.rsplit("/", 1)[1]
    assert verification.code_from_link(token) == issued.code
    assert verification.code_from_link(token + "x") is None
    with time_machine.travel(timezone.now() + dt.timedelta(minutes=11), tick=False):
        assert verification.code_from_link(token) is None


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_requests_at_once_never_pass_three_codes_an_hour(site):
    """The contact point's row lock makes the hourly count exact under a race."""
    import threading

    from django.db import connection

    contact = factories.make_contact(factories.make_patient(site))
    point = factories.add_point(contact, ContactPointKind.MOBILE, NUMBER)
    for _ in range(2):
        verification.issue_code(point, system="test")
    barrier, results = threading.Barrier(2), []

    def ask() -> None:
        try:
            barrier.wait(timeout=10)
            verification.issue_code(point, system="test")
            results.append("sent")
        except ValidationError:
            results.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=ask) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == ["refused", "sent"]
    assert VerificationCode.objects.count() == 3
