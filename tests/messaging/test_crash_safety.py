"""Workers killed with SIGKILL at random moments lose nothing and duplicate nothing.

2,000 messages go to the simulated provider over HTTP on loopback (its own process,
idempotency on, no callbacks) through 3 `carebell worker` processes with a short
lease, which are killed and restarted until every message is done. Then each
message must be sent exactly once at the sink and recorded `sent` here.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from carebell.core.vocab import OutboxStatus
from carebell.messaging.models import DeliveryAttempt, OutboxMessage
from tests.messaging.test_dispatcher import daytime_zone

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.real_clock,
]

MESSAGES = 2_000
WORKERS = 3
LEASE_SECONDS = 3
DEADLINE_SECONDS = 150
CARBELL = str(Path(sys.executable).with_name("carebell"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def wait_until_up(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/sim/api/faults", timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def due_messages(site, now: dt.datetime) -> None:
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                site=site,
                to_address=f"+1202555{n:04d}",
                channel="sms",
                kind="general",
                body=f"Message {n} from the clinic.",
                segments=1,
                planned_at=now,
                due_at=now,
                created_at=now,
                updated_at=now,
            )
            for n in range(MESSAGES)
        ],
        batch_size=1000,
    )


def pending() -> int:
    return OutboxMessage.objects.filter(status__in=["scheduled", "queued", "sending"]).count()


def sink_records(sim_url: str) -> list[dict]:
    with urllib.request.urlopen(f"{sim_url}/sim/api/messages?kind=sms", timeout=30) as response:
        return json.load(response)["messages"]


class Workers:
    """The worker processes, killed and restarted at will."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[subprocess.Popen] = []
        self.kills = 0

    def start(self) -> subprocess.Popen:
        command = [CARBELL, "worker", "--batch-size", "50", "--lease", str(LEASE_SECONDS)]
        proc = subprocess.Popen(
            [*command, "--idle", "0.2"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def running(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def kill_one(self, rng: random.Random) -> None:
        alive = self.running()
        if alive:
            rng.choice(alive).send_signal(signal.SIGKILL)
            self.kills += 1

    def keep(self, count: int) -> None:
        for _ in range(count - len(self.running())):
            self.start()

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


def test_killed_workers_lose_nothing_and_send_nothing_twice(site):
    now = timezone.now()
    site.time_zone = daytime_zone(now)
    site.save()
    due_messages(site, now)
    port = free_port()
    sim_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "CAREBELL_DATABASE_URL": database_url(),
        "CAREBELL_SMS_PROVIDER": "sim",
        "CAREBELL_SIM_URL": sim_url,
        "CAREBELL_LOG_LEVEL": "warning",
    }
    sim_options = ["--no-callbacks", "--max-records", str(MESSAGES * 2), "--latency-ms", "5"]
    sim = subprocess.Popen(
        [sys.executable, "-m", "carebell.providers.sim_server", "--port", str(port), *sim_options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = Workers(env)
    rng = random.Random(5)
    try:
        wait_until_up(sim_url)
        workers.keep(WORKERS)
        deadline = time.monotonic() + DEADLINE_SECONDS
        # Kill one worker at a random moment every so often while work remains,
        # then let the survivors (and the restarted) finish.
        while pending() and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.2, 1.2))
            if workers.kills < 12:
                workers.kill_one(rng)
            workers.keep(WORKERS)
        records = sink_records(sim_url)
    finally:
        workers.stop_all()
        sim.kill()
        sim.wait(timeout=10)

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
