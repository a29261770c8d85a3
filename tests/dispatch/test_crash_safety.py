"""Workers killed with SIGKILL at random moments lose nothing and duplicate nothing.

2,000 messages go to the simulated provider over HTTP on loopback (its own process,
idempotency on, no callbacks) through 3 `carebell worker` processes with a short
lease, which are killed and restarted until every message is done. Then each
message must be sent exactly once at the sink and recorded `sent` here. (The fault
suite, tests/faults, adds provider faults to the same machinery.)
"""

from __future__ import annotations

import collections
import random

import pytest
from django.utils import timezone

from carebell.core.vocab import OutboxStatus
from carebell.messaging.models import DeliveryAttempt, OutboxMessage
from tests.faults import harness

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_clock,
]

MESSAGES = 2_000
WORKERS = 3
LEASE_SECONDS = 3
DEADLINE_SECONDS = 150


def test_killed_workers_lose_nothing_and_send_nothing_twice(site):
    now = timezone.now()
    site.time_zone = harness.daytime_zone(now)
    site.save()
    harness.due_messages(site, now, MESSAGES)
    sim = harness.Sim("--latency-ms", "5", records=MESSAGES * 2)
    env = harness.worker_env(sim.url)
    workers = harness.Workers(env, harness.carebell_worker(50, LEASE_SECONDS))
    rng = random.Random(5)
    try:
        sim.start(env)
        harness.drive(workers, count=WORKERS, kills=12, deadline=DEADLINE_SECONDS, rng=rng)
        records = sim.records()
    finally:
        workers.stop_all()
        sim.stop()

    statuses = collections.Counter(OutboxMessage.objects.values_list("status", flat=True))
    assert workers.kills >= 5, "the workers finished before they could be killed enough"
    assert statuses == {OutboxStatus.SENT: MESSAGES}, statuses
    message_of = dict(DeliveryAttempt.objects.values_list("id", "message_id"))
    per_message = collections.Counter(
        message_of[int(r["status_callback"].rsplit("/", 1)[1])] for r in records
    )
    assert len(records) == MESSAGES
    assert len(per_message) == MESSAGES and max(per_message.values()) == 1
    assert len({r["idempotency_key"] for r in records}) == MESSAGES
    sids = OutboxMessage.objects.values_list("provider_message_id", flat=True)
    assert set(sids) == {r["sid"] for r in records}
