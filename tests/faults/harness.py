"""The machinery of the crash and fault suites: the simulated provider and real
dispatcher workers as processes on loopback, workers killed with SIGKILL at random
moments, and a tally of what reached the sink against what carebell recorded.

Needs Django set up on a PostgreSQL database (the workers share it with the caller).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from django.db import connection

CAREBELL = str(Path(sys.executable).with_name("carebell"))
PENDING = ("scheduled", "queued", "sending")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url() -> str:
    """The URL of the database Django is connected to, for the worker processes."""
    db = connection.settings_dict
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def daytime_zone(now: dt.datetime) -> str:
    """A time zone where it is now mid-day, so no quiet hour stops a real-time send."""
    zones = ("America/New_York", "Europe/Paris", "Asia/Kolkata", "Asia/Tokyo", "Pacific/Honolulu")
    return next(z for z in zones if 10 <= now.astimezone(ZoneInfo(z)).hour < 18)


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


def due_messages(site, now: dt.datetime, count: int) -> None:
    """`count` written SMS due now, each to its own number."""
    from carebell.messaging.models import OutboxMessage

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
            for n in range(count)
        ],
        batch_size=1000,
    )


def pending() -> int:
    from carebell.messaging.models import OutboxMessage

    return OutboxMessage.objects.filter(status__in=PENDING).count()


def worker_env(sim_url: str) -> dict[str, str]:
    """The environment of the sim and worker processes: this database, the sim as the
    SMS provider, warnings only."""
    return {
        **os.environ,
        "CAREBELL_DATABASE_URL": database_url(),
        "CAREBELL_SMS_PROVIDER": "sim",
        "CAREBELL_SIM_URL": sim_url,
        "CAREBELL_SIM_ENABLED": "1",
        "CAREBELL_SIM_AUTH_TOKEN": os.environ.get("CAREBELL_SIM_AUTH_TOKEN")
        or secrets.token_urlsafe(32),
        "CAREBELL_LOG_LEVEL": "warning",
    }


class Sim:
    """The simulated provider in its own process, with the given command-line faults."""

    def __init__(self, *options: str, records: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.options = ["--no-callbacks", "--max-records", str(records), *options]
        self.proc: subprocess.Popen | None = None

    def start(self, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "carebell.simulator.server", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [*command, *self.options],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_up(self.url)

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as response:
            return json.load(response)

    def records(self) -> list[dict]:
        return self.get("/sim/api/messages?kind=sms")["messages"]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Workers:
    """The worker processes, killed and restarted at will."""

    def __init__(self, env: dict[str, str], command: list[str]) -> None:
        self.env = env
        self.command = command
        self.procs: list[subprocess.Popen] = []
        self.kills = 0

    def start(self) -> subprocess.Popen:
        proc = subprocess.Popen(
            self.command, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


def carebell_worker(batch_size: int, lease: float) -> list[str]:
    """`carebell worker` as an operator runs it (production retry policy)."""
    options = ["--batch-size", str(batch_size), "--lease", f"{lease:g}", "--idle", "0.2"]
    return [CAREBELL, "worker", *options]


def fast_worker(batch_size: int, lease: float, timeout: float) -> list[str]:
    """The real dispatcher with a retry policy short enough for faults to play out
    in seconds (see tests/faults/worker.py)."""
    options = [
        "--batch-size",
        str(batch_size),
        "--lease",
        f"{lease:g}",
        "--timeout",
        f"{timeout:g}",
    ]
    return [sys.executable, "-m", "tests.faults.worker", *options]


def drive(
    workers: Workers, *, count: int, kills: int, deadline: float, rng: random.Random
) -> float:
    """Keep `count` workers running and kill one each time the work left falls past
    the next of `kills` random points, until none remains or `deadline` seconds
    pass; returns the seconds it took. The points are counts of messages, not
    times, so the kills spread over the work however fast this machine sends."""
    started = time.monotonic()
    total = pending()
    marks = sorted((rng.uniform(0, total) for _ in range(kills)), reverse=True)
    workers.keep(count)
    while (left := pending()) and time.monotonic() - started < deadline:
        if marks and left <= marks[0]:
            marks.pop(0)
            time.sleep(rng.uniform(0, 0.05))  # a random moment of the batch in flight
            workers.kill_one(rng)
        workers.keep(count)
        time.sleep(0.02)
    return time.monotonic() - started


@dataclass
class Tally:
    """What reached the patient (the sink) against what carebell recorded."""

    planned: int
    statuses: dict[str, int]
    at_sink: int  # messages the sink holds at least once
    duplicated: int  # messages the sink holds more than once
    lost: int  # recorded sent (or still pending) but not at the sink
    failed_but_delivered: int  # recorded failed or undelivered, yet at the sink
    refused: int  # recorded failed and not at the sink (permanent errors)
    unconfirmed: int  # ended without a resend: nobody could say
    wrong_sid: int  # recorded sent with another provider id than the sink's
    sink_counts: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        sent = self.statuses.get("sent", 0) + self.statuses.get("delivered", 0)
        faults = {k: v for k, v in self.sink_counts.items() if k.startswith("fault_")}
        return [
            f"messages planned        {self.planned}",
            f"recorded sent           {sent}",
            f"at the sink             {self.at_sink}",
            f"duplicated              {self.duplicated}",
            f"lost                    {self.lost}",
            f"failed but delivered    {self.failed_but_delivered}",
            f"failed (refused)        {self.refused}",
            f"unconfirmed             {self.unconfirmed}",
            f"recorded with wrong id  {self.wrong_sid}",
            f"statuses                {dict(sorted(self.statuses.items()))}",
            f"faults injected         {dict(sorted(faults.items()))}",
            f"same-key resends        {self.sink_counts.get('duplicates', 0)}",
        ]


def tally(sim: Sim, planned: int) -> Tally:
    from carebell.messaging.models import DeliveryAttempt, OutboxMessage

    records = sim.records()
    message_of = dict(DeliveryAttempt.objects.values_list("idempotency_key", "message_id"))
    per_message = collections.Counter(message_of.get(r["idempotency_key"]) for r in records)
    sids = collections.defaultdict(set)
    for record in records:
        sids[message_of.get(record["idempotency_key"])].add(record["sid"])
    rows = OutboxMessage.objects.values_list("id", "status", "provider_message_id", "error_code")
    statuses: collections.Counter[str] = collections.Counter()
    lost = failed_but_delivered = refused = unconfirmed = wrong_sid = 0
    for message_id, status, sid, error_code in rows:
        statuses[status] += 1
        there = per_message.get(message_id, 0) > 0
        if status in ("sent", "delivered", *PENDING) and not there:
            lost += 1
        if status in ("failed", "undelivered"):
            failed_but_delivered += there
            refused += not there
        if status in ("sent", "delivered") and there and sid not in sids[message_id]:
            wrong_sid += 1
        unconfirmed += error_code == "unconfirmed"
    return Tally(
        planned=planned,
        statuses=dict(statuses),
        at_sink=sum(1 for m in per_message if m is not None),
        duplicated=sum(1 for m, n in per_message.items() if m is not None and n > 1),
        lost=lost,
        failed_but_delivered=failed_but_delivered,
        refused=refused,
        unconfirmed=unconfirmed,
        wrong_sid=wrong_sid + per_message.get(None, 0),
        sink_counts=sim.get("/sim/api/messages?kind=none")["counts"],
    )
