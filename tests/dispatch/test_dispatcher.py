"""The dispatcher: send what is due, check it again first, retry, record, pace."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import urllib.request

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.core.retry import RetryPolicy
from carebell.core.vocab import Kind, OutboxStatus
from carebell.dispatch.dispatcher import Batch, Dispatcher
from carebell.dispatch.rows import load_claimed
from carebell.messaging.models import AutomatedMessage, DeliveryAttempt, OutboxMessage
from carebell.outbox import OutboxWriter, lock_due
from carebell.people.models import ContactPoint, OptOutEvent
from carebell.planning.appointments import plan_site_appointments
from carebell.planning.policies import PolicyCache
from carebell.simulator.server import SimConfig, start_in_thread
from tests.faults.harness import daytime_zone
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db


def plan(site, now=NOW) -> None:
    rules = list(AutomatedMessage.objects.filter(site=site, enabled=True))
    writer = OutboxWriter(now)
    for decision in plan_site_appointments(site, rules, PolicyCache().for_site(site), now):
        if decision.planned:
            writer.add(decision)
    writer.flush()


def planned_reminder(site, **family_options) -> OutboxMessage:
    """One reminder for one child, planned at NOW; it falls due the day before."""
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    family(site, **family_options)
    plan(site)
    return OutboxMessage.objects.get()


def send_due(message: OutboxMessage, dispatcher: Dispatcher | None = None) -> OutboxMessage:
    """Run one batch at the moment `message` falls due, and reload it."""
    dispatcher = dispatcher or Dispatcher()
    try:
        dispatcher.process_batch(now=message.due_at)
    finally:
        dispatcher.close()
    return OutboxMessage.objects.get(id=message.id)


@pytest.fixture
def sim(settings):
    handle = start_in_thread(SimConfig(port=0, callbacks=False, seed=1))
    settings.SMS_PROVIDER = "sim"
    settings.SIM_URL = handle.url
    yield handle
    handle.stop()


def set_faults(sim, **faults) -> None:
    request = urllib.request.Request(
        f"{sim.url}/sim/api/faults",
        data=json.dumps({"clear": True, **faults}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=5).read()


def test_it_sends_a_planned_reminder_through_the_console(site):
    message = send_due(planned_reminder(site))
    attempt = DeliveryAttempt.objects.get(message=message)
    assert (message.status, message.attempts, message.provider) == ("sent", 1, "console")
    assert message.provider_message_id == f"console-{attempt.id}"
    assert attempt.finished_at is not None and attempt.status == "sent"
    assert "Kid0" in message.body and message.segments >= 1


def test_it_sends_through_the_sim_with_the_attempt_id_in_the_callback_url(site, sim):
    message = send_due(planned_reminder(site))
    attempt = DeliveryAttempt.objects.get(message=message)
    [record] = sim.server.state.records
    assert (message.status, message.provider) == ("sent", "sim")
    assert record.sid == message.provider_message_id == attempt.provider_message_id
    assert record.to == "+12025550123" and record.body == message.body
    assert record.status_callback.endswith(f"/hooks/sim/status/{attempt.id}")
    assert record.idempotency_key == attempt.idempotency_key


def test_a_cancelled_appointment_cancels_the_message_with_its_reason(site):
    message = planned_reminder(site)
    from carebell.appointments.models import Appointment

    Appointment.objects.filter(id=message.entity_id).update(status="cancelled")
    message = send_due(message)
    assert message.status == OutboxStatus.CANCELLED
    assert message.reasons[-1]["code"] == "appointment_cancelled"
    assert not DeliveryAttempt.objects.exists()


def test_an_opted_out_number_is_blocked(site):
    message = planned_reminder(site)
    ContactPoint.objects.filter(id=message.contact_point_id).update(opted_out_sms=True)
    message = send_due(message)
    assert (message.status, message.block_reason) == ("blocked", "opted_out")
    assert not DeliveryAttempt.objects.exists()


def test_without_consent_a_site_that_requires_opt_in_blocks_it(site):
    message = planned_reminder(site)
    ContactPoint.objects.filter(id=message.contact_point_id).update(consent_sms=False)
    site.delivery.require_opt_in = True
    site.delivery.save()
    message = send_due(message)
    assert (message.status, message.block_reason) == ("blocked", "no_consent")


def test_a_restricted_word_in_the_rendered_text_blocks_it(site):
    message = planned_reminder(site)
    site.delivery.restricted_words = ["Kid0"]
    site.delivery.save()
    message = send_due(message)
    assert (message.status, message.block_reason) == ("blocked", "word_restricted")
    assert message.reasons[-1]["code"] == "word_restricted"


def test_a_message_whose_event_passed_is_cancelled(site):
    message = planned_reminder(site)
    dispatcher = Dispatcher()
    dispatcher.process_batch(now=message.event_at + dt.timedelta(minutes=1))
    dispatcher.close()
    message.refresh_from_db()
    assert message.status == OutboxStatus.CANCELLED
    assert message.reasons[-1]["code"] == "appointment_passed"


def test_a_message_found_in_quiet_hours_is_deferred_to_the_next_allowed_time(site):
    message = planned_reminder(site)
    night = message.due_at.astimezone(site.zone).replace(hour=22, minute=0)
    dispatcher = Dispatcher()
    dispatcher.process_batch(now=night)
    dispatcher.close()
    message.refresh_from_db()
    local = message.due_at.astimezone(site.zone)
    assert message.status == OutboxStatus.SCHEDULED and message.attempts == 0
    assert (local.date(), local.time()) == (night.date() + dt.timedelta(days=1), dt.time(8))
    assert message.reasons[-1]["code"] == "moved_later_to_window"


def test_a_throttled_send_is_retried_no_sooner_than_retry_after(site, sim):
    set_faults(sim, throttle_rate=1.0, retry_after=900)
    message = planned_reminder(site)
    sent_at = message.due_at
    message = send_due(message)
    assert (message.status, message.attempts, message.error_code) == ("sending", 1, "20429")
    assert message.due_at >= sent_at + dt.timedelta(seconds=900)
    assert DeliveryAttempt.objects.get().status == "failed"


def test_a_failing_provider_is_retried_with_backoff_then_failed(site, sim):
    set_faults(sim, failure_rate=1.0)
    message = planned_reminder(site)
    dispatcher = Dispatcher(retry_policy=RetryPolicy(max_attempts=3))
    gaps = []
    for _ in range(3):
        before = message.due_at
        dispatcher.process_batch(now=before)
        message.refresh_from_db()
        gaps.append(message.due_at - before)
    dispatcher.close()
    assert (message.status, message.attempts, message.error_code) == ("failed", 3, "20500")
    assert message.reasons[-1]["code"] == "retries_exhausted"
    assert dt.timedelta(seconds=15) <= gaps[0] < gaps[1]
    assert DeliveryAttempt.objects.filter(message=message).count() == 3


def test_an_invalid_number_fails_once(site, sim):
    set_faults(sim, numbers={"+12025550123": 21211})
    message = send_due(planned_reminder(site))
    assert (message.status, message.attempts, message.error_code) == ("failed", 1, "21211")
    assert DeliveryAttempt.objects.get().permanent


def test_an_unsubscribed_recipient_fails_and_the_number_is_opted_out(site, sim):
    set_faults(sim, numbers={"+12025550123": 21610})
    message = send_due(planned_reminder(site))
    assert (message.status, message.error_code) == ("failed", "21610")
    assert ContactPoint.objects.get(id=message.contact_point_id).opted_out_sms
    assert OptOutEvent.objects.get().source == "provider_error"


def test_status_only_moves_forward(site):
    message = send_due(planned_reminder(site))
    assert not outbox.close_message(message.id, OutboxStatus.CANCELLED, (), NOW)
    outbox.record_status("console", message.provider_message_id, "delivered", now=NOW)
    outbox.record_status("console", message.provider_message_id, "sent", now=NOW)
    message.refresh_from_db()
    assert message.status == OutboxStatus.DELIVERED


def test_the_worker_command_sends_what_is_due_once(site):
    message = planned_reminder(site)
    site.time_zone = daytime_zone(timezone.now())
    site.save()
    now = timezone.now()
    OutboxMessage.objects.filter(id=message.id).update(
        due_at=now, planned_at=now, event_at=now + dt.timedelta(days=1)
    )
    call_command("worker", once=True)
    message.refresh_from_db()
    assert message.status == OutboxStatus.SENT


def test_pacing_keeps_a_sender_under_its_messages_per_second(site, sim, settings):
    settings.SIM_MESSAGES_PER_SECOND = 5
    enable(site, Kind.APPT_REMINDER, [{"days": 1}])
    for n in range(12):
        family(site, mobile=f"+120255501{n:02d}")
    plan(site)
    due = OutboxMessage.objects.order_by("due_at").first().due_at
    OutboxMessage.objects.update(due_at=due)
    dispatcher = Dispatcher()
    dispatcher.process_batch(now=due)
    sent_first = OutboxMessage.objects.filter(status="sent").count()
    later = sorted(
        OutboxMessage.objects.filter(status="scheduled").values_list("due_at", flat=True)
    )
    dispatcher.process_batch(now=due + dt.timedelta(seconds=2))
    dispatcher.close()
    assert sent_first == 5 and len(later) == 7
    assert all(b - a >= dt.timedelta(seconds=0.2) for a, b in itertools.pairwise(later))
    assert later[0] >= due + dt.timedelta(seconds=1)
    assert OutboxMessage.objects.filter(status="sent").count() == 10
    assert len(sim.server.state.records) == 10


def ready_notice(pharmacy, step: str) -> OutboxMessage:
    """A ready notice due at NOW (10:00 in New York, inside every window)."""
    from tests import factories

    patient = factories.make_patient(pharmacy)
    fill = factories.make_fill(factories.make_prescription(patient), step=step)
    return OutboxMessage.objects.create(
        site=pharmacy,
        patient=patient,
        to_address="+12025550170",
        channel="sms",
        kind=Kind.RX_READY,
        entity_type="fill",
        entity_id=fill.id,
        planned_at=NOW,
        due_at=NOW,
        body="Maple Pharmacy: your order is ready. Reply STOP to opt out.",
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_ready_notice_for_a_waiting_fill_is_sent(pharmacy):
    assert send_due(ready_notice(pharmacy, "ready")).status == "sent"


def test_a_ready_notice_for_a_picked_up_fill_is_cancelled(pharmacy):
    message = send_due(ready_notice(pharmacy, "picked_up"))
    assert (message.status, message.reasons[-1]["code"]) == ("cancelled", "picked_up")


def test_a_failing_batch_does_not_stop_the_worker(site, monkeypatch):
    import threading

    calls = []

    def fail_once(self, now=None):
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError("boom")
        stop.set()
        return False

    stop = threading.Event()
    monkeypatch.setattr(Dispatcher, "process_batch", fail_once)
    Dispatcher().run(stop, idle_seconds=0)
    assert len(calls) == 2


def claim(dispatcher: Dispatcher, now: dt.datetime, *, prepare: bool) -> Batch:
    """The first half of `process_batch`: lock, load, set aside (and prepare)."""
    with transaction.atomic():
        batch = Batch(
            now=now, token=now + dispatcher.lease, messages=load_claimed(lock_due(now, 10))
        )
        dispatcher._set_aside_unfinished(batch)
        if prepare:
            dispatcher._prepare(batch)
    return batch


def test_a_worker_whose_lease_ran_out_leaves_the_resend_to_the_worker_that_claimed_it(site):
    message = planned_reminder(site)
    now = message.due_at
    crashed, slow, fast = (Dispatcher(lease=dt.timedelta(seconds=10)) for _ in range(3))
    claim(crashed, now, prepare=True)  # attempt #1 saved, then the worker died
    later = now + dt.timedelta(seconds=11)
    stalled = claim(slow, later, prepare=False)
    assert len(stalled.unfinished) == 1
    assert fast.process_batch(now=later + dt.timedelta(seconds=11))
    slow._reconcile_unfinished(stalled)  # its lease ran out while it stalled
    assert stalled.to_send == []
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 1)
    assert DeliveryAttempt.objects.get().finished_at is not None
    for dispatcher in (crashed, slow, fast):
        dispatcher.close()


def test_an_unfinished_attempt_is_resent_under_its_own_key(site):
    message = planned_reminder(site)
    now = message.due_at
    crashed, worker = Dispatcher(lease=dt.timedelta(seconds=10)), Dispatcher()
    claim(crashed, now, prepare=True)
    key = DeliveryAttempt.objects.get().idempotency_key
    assert worker.process_batch(now=now + dt.timedelta(seconds=11))
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.idempotency_key, attempt.status) == (key, "sent")
    assert OutboxMessage.objects.get().status == "sent"
    crashed.close()
    worker.close()


# --- answers lost after the provider may have accepted: settled, never sent twice ------


@pytest.fixture
def twilio_at_sim(sim, settings):
    """Twilio's own provider (no idempotency key) against the sim's Twilio API."""
    settings.SMS_PROVIDER = "twilio"
    settings.TWILIO_BASE_URL = sim.url
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.TWILIO_FROM = "+15005550006"
    settings.TWILIO_MESSAGES_PER_SECOND = 100.0
    return sim


def last_reason(message: OutboxMessage) -> str:
    return message.events.order_by("at", "id").last().reasons[-1]["code"]


def test_an_answer_lost_after_acceptance_leaves_the_attempt_unknown_not_failed(site, sim):
    set_faults(sim, timeout_rate=1.0, stall_seconds=3)
    message = planned_reminder(site)
    first = message.due_at
    dispatcher = Dispatcher(timeout_seconds=1.0)
    dispatcher.process_batch(now=first)
    dispatcher.close()
    message.refresh_from_db()
    attempt = DeliveryAttempt.objects.get()
    assert (message.status, message.attempts, message.error_code) == ("sending", 1, "timeout")
    assert (attempt.status, attempt.finished_at) == ("unknown", None)
    assert first + dt.timedelta(seconds=15) <= message.due_at <= first + dt.timedelta(seconds=30)
    assert last_reason(message) == "outcome_unknown"
    assert len(sim.server.state.records) == 1  # the provider has it


def test_an_attempt_whose_answer_was_lost_is_recorded_from_the_provider_not_resent(site, sim):
    set_faults(sim, timeout_rate=1.0, stall_seconds=3)
    message = planned_reminder(site)
    dispatcher = Dispatcher(timeout_seconds=1.0, retry_policy=RetryPolicy(max_attempts=1))
    dispatcher.process_batch(now=message.due_at)
    message.refresh_from_db()
    dispatcher.process_batch(now=message.due_at)
    dispatcher.close()
    message.refresh_from_db()
    attempt = DeliveryAttempt.objects.get()
    [record] = sim.server.state.records
    assert (message.status, message.attempts) == ("sent", 1)
    assert message.provider_message_id == record.sid == attempt.provider_message_id
    assert attempt.status == "queued" and attempt.finished_at is not None
    assert sim.server.state.counts.get("duplicates", 0) == 0  # looked up, not resent


def test_a_dropped_connection_after_acceptance_is_settled_the_same_way(site, sim):
    set_faults(sim, drop_rate=1.0)
    message = planned_reminder(site)
    dispatcher = Dispatcher()
    dispatcher.process_batch(now=message.due_at)
    message.refresh_from_db()
    assert (message.status, DeliveryAttempt.objects.get().status) == ("sending", "unknown")
    dispatcher.process_batch(now=message.due_at)
    dispatcher.close()
    message.refresh_from_db()
    [record] = sim.server.state.records
    assert (message.status, message.provider_message_id) == ("sent", record.sid)


def test_a_status_callback_settles_an_attempt_whose_answer_was_lost(site, sim):
    set_faults(sim, timeout_rate=1.0, stall_seconds=3)
    message = planned_reminder(site)
    dispatcher = Dispatcher(timeout_seconds=1.0)
    dispatcher.process_batch(now=message.due_at)
    [record] = sim.server.state.records
    attempt = DeliveryAttempt.objects.get()
    assert outbox.record_status(
        "sim", record.sid, "delivered", now=message.due_at, attempt_id=attempt.id
    )
    message.refresh_from_db()
    attempt.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("delivered", record.sid)
    assert (attempt.status, attempt.provider_message_id) == ("delivered", record.sid)
    assert attempt.finished_at is not None
    assert not dispatcher.process_batch(now=message.due_at + dt.timedelta(hours=1))
    dispatcher.close()
    assert len(sim.server.state.records) == 1


def test_a_lost_answer_is_never_counted_as_a_failed_attempt(site, sim):
    # Every answer is lost: the message waits on the provider, never fails, and is
    # sent once; a delivered message is never recorded as failed.
    set_faults(sim, timeout_rate=1.0, stall_seconds=3)
    message = planned_reminder(site)
    dispatcher = Dispatcher(timeout_seconds=1.0, retry_policy=RetryPolicy(max_attempts=1))
    for _ in range(3):
        dispatcher.process_batch(now=message.due_at)
        message.refresh_from_db()
    dispatcher.close()
    assert message.status == "sent"
    assert len(sim.server.state.records) == 1
    assert not DeliveryAttempt.objects.filter(status="failed").exists()


def test_without_idempotency_a_lost_answer_is_found_by_searching_what_went_to_the_number(
    pharmacy, twilio_at_sim
):
    set_faults(twilio_at_sim, timeout_rate=1.0, stall_seconds=3)
    message = ready_notice(pharmacy, "ready")
    dispatcher = Dispatcher(timeout_seconds=1.0)
    dispatcher.process_batch(now=timezone.now())
    message.refresh_from_db()
    assert DeliveryAttempt.objects.get().status == "unknown"
    set_faults(twilio_at_sim)
    dispatcher.process_batch(now=message.due_at)
    dispatcher.close()
    message.refresh_from_db()
    [record] = twilio_at_sim.server.state.records
    assert (message.status, message.provider, message.provider_message_id) == (
        "sent",
        "twilio",
        record.sid,
    )


def test_without_idempotency_an_attempt_is_resent_only_once_the_provider_says_it_never_got_it(
    pharmacy, twilio_at_sim
):
    message = ready_notice(pharmacy, "ready")
    now = timezone.now()
    crashed, worker = Dispatcher(lease=dt.timedelta(seconds=10)), Dispatcher()
    claim(crashed, now, prepare=True)  # attempt #1 saved, then the worker died
    worker.process_batch(now=now + dt.timedelta(seconds=11))
    message.refresh_from_db()
    # Twilio's search may not show a message still in its queue: not proof yet.
    assert (message.status, last_reason(message)) == ("sending", "outcome_unknown")
    assert len(twilio_at_sim.server.state.records) == 0
    worker.process_batch(now=max(message.due_at, now + dt.timedelta(minutes=6)))
    message.refresh_from_db()
    attempt = DeliveryAttempt.objects.get()
    [record] = twilio_at_sim.server.state.records
    assert (message.status, message.attempts, message.provider_message_id) == (
        "sent",
        1,
        record.sid,
    )
    assert record.status_callback.endswith(f"/status/{attempt.id}")
    crashed.close()
    worker.close()


def test_without_idempotency_an_attempt_nobody_can_account_for_ends_unconfirmed_not_resent(
    pharmacy, twilio_at_sim, settings
):
    message = ready_notice(pharmacy, "ready")
    now = timezone.now()
    crashed = Dispatcher(lease=dt.timedelta(seconds=10))
    claim(crashed, now, prepare=True)
    settings.TWILIO_BASE_URL = "http://127.0.0.1:9"  # the provider does not answer
    worker = Dispatcher(retry_policy=RetryPolicy(unknown_wait=dt.timedelta(minutes=10)))
    worker.process_batch(now=now + dt.timedelta(seconds=11))
    message.refresh_from_db()
    assert (message.status, last_reason(message)) == ("sending", "outcome_unknown")
    worker.process_batch(now=now + dt.timedelta(minutes=11))
    message.refresh_from_db()
    attempt = DeliveryAttempt.objects.get()
    assert (message.status, message.error_code) == ("sent", "unconfirmed")
    assert message.reasons[-1]["code"] == "delivery_unconfirmed"
    assert (attempt.status, attempt.finished_at is not None) == ("unknown", True)
    assert len(twilio_at_sim.server.state.records) == 0
    assert not worker.process_batch(now=now + dt.timedelta(hours=2))
    crashed.close()
    worker.close()


def test_a_signed_status_callback_through_the_hook_settles_a_lost_answer(
    pharmacy, twilio_at_sim, client, settings
):
    from twilio.request_validator import RequestValidator

    set_faults(twilio_at_sim, timeout_rate=1.0, stall_seconds=3)
    message = ready_notice(pharmacy, "ready")
    dispatcher = Dispatcher(timeout_seconds=1.0)
    dispatcher.process_batch(now=timezone.now())
    [record] = twilio_at_sim.server.state.records
    attempt = DeliveryAttempt.objects.get()
    path = f"/hooks/twilio/status/{attempt.id}"
    form = {"MessageSid": record.sid, "MessageStatus": "sent", "AccountSid": "AC" + "1" * 32}
    signature = RequestValidator("test-token").compute_signature(settings.BASE_URL + path, form)
    assert client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature).status_code == 200
    message.refresh_from_db()
    attempt.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("sent", record.sid)
    assert (attempt.status, attempt.finished_at is not None) == ("sent", True)
    assert not dispatcher.process_batch(now=timezone.now() + dt.timedelta(hours=2))
    dispatcher.close()
    assert len(twilio_at_sim.server.state.records) == 1
