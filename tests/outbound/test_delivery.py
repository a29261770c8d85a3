"""The events worker against a real receiver on loopback: signed, retried, leased."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import time_machine
from django.utils import timezone
from standardwebhooks import Webhook

from carebell import events
from carebell.messaging.models import OutboundEvent
from carebell.outbound import endpoints
from carebell.outbound.delivery import EventDeliverer, fan_out
from carebell.outbound.models import DeliveryAttemptLog, DeliveryStatus, EventDelivery

pytestmark = pytest.mark.django_db(transaction=False)


def emit(site, event_type="appointment.confirmed", **data):
    events.emit(site, event_type, data or {"appointment": {"id": 1}}, timezone.now())


def delivery():
    return EventDelivery.objects.get()


def later(seconds):
    return timezone.now() + dt.timedelta(seconds=seconds)


def test_it_signs_each_delivery_as_the_reference_library_verifies(
    site, endpoint, receiver, deliverer
):
    emit(site, appointment={"id": 7, "external_id": "A-7"})
    assert deliverer.process_batch()
    headers, body = receiver.received[0]
    payload = Webhook(endpoint.secret).verify(body, headers)
    assert payload["type"] == "appointment.confirmed"
    assert payload["data"] == {"appointment": {"id": 7, "external_id": "A-7"}}
    assert headers["webhook-id"] == delivery().message_id
    assert delivery().status == DeliveryStatus.DELIVERED
    assert OutboundEvent.objects.get().delivered_at is not None


def test_a_wrong_secret_does_not_verify(site, endpoint, receiver, deliverer):
    from standardwebhooks.webhooks import WebhookVerificationError

    emit(site)
    deliverer.process_batch()
    headers, body = receiver.received[0]
    other = endpoints.create_endpoint(
        site, url=receiver.url, event_types=["contact.opted_in"], by=None
    )[1]
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_during_a_rotation_both_secrets_verify(site, endpoint, receiver, deliverer):
    old = endpoint.secret
    new = endpoints.rotate_secret(endpoint, by=None)
    emit(site)
    deliverer.process_batch()
    headers, body = receiver.received[0]
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers)["type"] == "appointment.confirmed"
    assert Webhook(new).verify(body, headers)["type"] == "appointment.confirmed"


def test_after_the_previous_secret_expires_only_the_new_one_signs(
    site, endpoint, receiver, deliverer
):
    from standardwebhooks.webhooks import WebhookVerificationError

    old = endpoint.secret
    new = endpoints.rotate_secret(endpoint, by=None, keep_previous=dt.timedelta(hours=1))
    with time_machine.travel(later(2 * 3600), tick=True):
        emit(site)
        deliverer.process_batch()
        headers, body = receiver.received[0]
        assert len(headers["webhook-signature"].split(" ")) == 1
        Webhook(new).verify(body, headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(old).verify(body, headers)


def test_only_subscribed_enabled_endpoints_of_the_site_get_an_event(
    site, other_org_site, receiver, allow_private, deliverer
):
    mine = endpoints.create_endpoint(
        site, url=receiver.url, event_types=["contact.opted_out"], by=None
    )[0]
    endpoints.create_endpoint(site, url=receiver.url, event_types=["message.failed"], by=None)
    off = endpoints.create_endpoint(
        site, url=receiver.url, event_types=["contact.opted_out"], by=None
    )[0]
    endpoints.disable_endpoint(off, by=None)
    endpoints.create_endpoint(
        other_org_site, url=receiver.url, event_types=["contact.opted_out"], by=None
    )
    emit(site, "contact.opted_out", channel="sms")
    deliverer.process_batch()
    assert list(EventDelivery.objects.values_list("endpoint_id", flat=True)) == [mine.pk]
    assert len(receiver.received) == 1


def test_a_server_error_is_retried_on_the_schedule(site, endpoint, receiver, deliverer):
    receiver.answer(500)
    emit(site)
    deliverer.process_batch()
    row = delivery()
    assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
    assert later(4) < row.due_at < later(7)  # the first wait: 5 s ± 10 %
    assert not deliverer.process_batch()  # not due yet: nothing sent
    with time_machine.travel(later(6), tick=True):
        deliverer.process_batch()
    row = delivery()
    assert (row.status, row.attempts) == ("delivered", 2)
    assert [h["webhook-id"] for h, _ in receiver.received] == [row.message_id] * 2
    log = list(DeliveryAttemptLog.objects.order_by("number").values_list("number", "status_code"))
    assert log == [(1, 500), (2, 204)]


def test_retry_after_is_honoured(site, endpoint, receiver, deliverer):
    receiver.answer((429, {"Retry-After": "120"}))
    emit(site)
    deliverer.process_batch()
    row = delivery()
    assert later(115) < row.due_at < later(125)
    assert "Retry-After" in row.last_error


def test_410_switches_the_endpoint_off(site, endpoint, receiver, deliverer):
    receiver.answer(410)
    emit(site)
    deliverer.process_batch()
    endpoint.refresh_from_db()
    assert (endpoint.enabled, endpoint.disabled_reason) == (False, "gone")
    assert delivery().status == DeliveryStatus.FAILED
    emit(site)
    deliverer.process_batch()
    assert len(receiver.received) == 1  # nothing more goes to it
    assert EventDelivery.objects.count() == 1


def test_a_timeout_is_retried(site, endpoint, deliverer):
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(5)  # accepts connections, never answers
    endpoint.url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
    endpoint.save(update_fields=["url"])
    quick = EventDeliverer(timeout_seconds=0.3)
    try:
        emit(site)
        quick.process_batch()
    finally:
        quick.close()
        silent.close()
    row = delivery()
    assert (row.status, row.last_status_code) == ("pending", None)
    assert row.last_error == "no answer in time"


def test_a_refused_connection_is_retried(site, endpoint, deliverer):
    endpoint.url = "http://127.0.0.1:9/"  # the discard port: nothing listens
    endpoint.save(update_fields=["url"])
    emit(site)
    deliverer.process_batch()
    assert (delivery().status, delivery().last_error) == ("pending", "connection failed")


def test_it_gives_up_after_about_three_days(site, endpoint, receiver, deliverer):
    receiver.answer(*[503] * 20)
    start = timezone.now()
    emit(site)
    deliverer.process_batch()
    for _ in range(20):
        row = delivery()
        if row.status != "pending":
            break
        with time_machine.travel(row.due_at + dt.timedelta(seconds=1), tick=True):
            deliverer.process_batch()
    row = delivery()
    assert row.status == DeliveryStatus.FAILED
    assert dt.timedelta(days=2, hours=12) < row.finished_at - start < dt.timedelta(days=3, hours=6)
    assert row.attempts == 10


def test_a_delivery_whose_worker_died_is_sent_again_once_its_lease_ends(site, endpoint, receiver):
    emit(site)
    fan_out(timezone.now())
    dead = EventDeliverer(lease=dt.timedelta(seconds=60))
    claimed = dead._claim(timezone.now(), dead._rooms())  # claimed, then the worker "dies"
    assert len(claimed) == 1 and delivery().status == DeliveryStatus.DELIVERING
    alive = EventDeliverer(timeout_seconds=2.0)
    try:
        assert not alive.process_batch()  # still leased: not taken
        with time_machine.travel(later(61), tick=True):
            assert alive.process_batch()
            assert not alive.process_batch()
    finally:
        alive.close()
        dead.close()
    row = delivery()
    assert (row.status, row.attempts) == ("delivered", 2)
    assert len(receiver.received) == 1
    notes = list(DeliveryAttemptLog.objects.order_by("id").values_list("number", "error"))
    assert notes[0][1].startswith("the worker stopped")
    assert notes[1] == (2, "")


def test_an_answer_recorded_after_the_lease_passed_to_another_worker_changes_nothing(
    site, endpoint, receiver, deliverer
):
    emit(site)
    fan_out(timezone.now())
    slow = EventDeliverer(lease=dt.timedelta(seconds=60))
    jobs = slow._claim(timezone.now(), slow._rooms())
    with time_machine.travel(later(61), tick=True):
        deliverer.process_batch()  # the row's lease ran out: taken and delivered
        receiver.answer(500)
        slow._submit(jobs)
        slow._finish_in_flight()  # the slow worker's late 500 …
    slow.close()
    assert delivery().status == DeliveryStatus.DELIVERED  # … does not undo it


def test_resend_sends_the_same_webhook_id_again(site, endpoint, receiver, deliverer):
    emit(site)
    deliverer.process_batch()
    assert endpoints.resend(delivery(), by=None)
    deliverer.process_batch()
    first, second = receiver.received
    assert first[0]["webhook-id"] == second[0]["webhook-id"]
    assert json.loads(first[1]) == json.loads(second[1])
    assert delivery().status == DeliveryStatus.DELIVERED


@pytest.mark.django_db(transaction=True)
def test_the_run_loop_delivers_and_stops(site, endpoint, receiver):
    import threading

    from django.db import connection

    for n in range(30):
        emit(site, appointment={"id": n})
    stop = threading.Event()
    worker = EventDeliverer(timeout_seconds=2.0)

    def run():
        try:
            worker.run(stop, 0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(200):  # the receiver's count, not the database: no lock to meet
            if len(receiver.received) >= 30:
                break
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(10)
    assert EventDelivery.objects.filter(status="delivered").count() == 30
    assert len(receiver.received) == 30
    assert not thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_that_never_answers_holds_up_no_other(site, receiver, allow_private):
    import socket
    import threading

    from django.db import connection

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # accepts, never answers
    stuck = endpoints.create_endpoint(
        site, url=f"http://127.0.0.1:{silent.getsockname()[1]}/", event_types=["message.failed"],
        by=None,
    )[0]  # fmt: skip
    endpoints.create_endpoint(site, url=receiver.url, event_types=["message.failed"], by=None)
    for n in range(10):
        emit(site, "message.failed", message={"id": n})
    stop = threading.Event()
    worker = EventDeliverer(timeout_seconds=30.0, per_endpoint=4)

    def run():
        try:
            worker.run(stop, 0.05)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        for _ in range(400):
            if len(receiver.received) >= 10:
                break
            stop.wait(0.05)
        assert len(receiver.received) == 10  # all delivered to the endpoint that answers …
        assert worker.in_flight[stuck.pk] == 10  # … while the other's still wait
    finally:
        silent.close()  # the stuck requests fail now, and the worker can stop
        stop.set()
        thread.join(40)
    assert not thread.is_alive()
    stuck_rows = EventDelivery.objects.filter(endpoint=stuck)
    assert set(stuck_rows.values_list("status", flat=True)) == {"pending"}  # to try again


def patients_message(site, *, due_at, status="scheduled"):
    from carebell.messaging.models import OutboxMessage

    now = timezone.now()
    return OutboxMessage.objects.create(
        site=site, to_address="+12025550123", channel="sms", kind="appt_reminder",
        planned_at=now, due_at=due_at, created_at=now, updated_at=now, status=status,
    )  # fmt: skip


def test_it_gives_way_while_a_patients_message_is_due(site, endpoint, receiver, monkeypatch):
    from carebell.outbound import delivery as worker_module

    monkeypatch.setattr(worker_module, "YIELD_BATCH", 4)
    for n in range(10):
        emit(site, appointment={"id": n})
    waiting = patients_message(site, due_at=timezone.now())
    worker = EventDeliverer(timeout_seconds=2.0)
    try:
        worker.step()
        assert worker.yielding
        handed = OutboundEvent.objects.filter(delivered_at__isnull=False).count()
        assert handed == 4  # handed on and claimed: a few a turn
        assert EventDelivery.objects.filter(status="delivering").count() == 4
        worker._finish_in_flight()
        waiting.due_at = later(3600)  # the dispatcher took it: due again only later
        waiting.save(update_fields=["due_at"])
        worker._patients_asked = -1.0  # ask again now, not in a quarter of a second
        worker._nothing_handed_at = -1.0
        worker.step()
        assert not worker.yielding
        worker._finish_in_flight()
    finally:
        worker.close()
    assert EventDelivery.objects.filter(status="delivered").count() == 10
    assert len(receiver.received) == 10


@pytest.mark.parametrize(
    ("status", "due_in", "waiting"),
    [
        ("scheduled", 0, True),
        ("queued", -60, True),
        ("sending", -1, True),  # a lease that ran out: the dispatcher takes it again
        ("sending", 60, False),  # in a dispatcher's hands
        ("scheduled", 60, False),  # due later
        ("sent", -60, False),
        ("cancelled", -60, False),
    ],
)
def test_patients_wait_only_for_messages_a_dispatcher_would_claim_now(
    site, status, due_in, waiting
):
    from carebell.outbound import _sql

    patients_message(site, due_at=later(due_in), status=status)
    assert _sql.patients_waiting(timezone.now()) is waiting
