"""The events worker: hand each event to its endpoints, then deliver, sign, retry.

It runs apart from the patients' dispatcher (`carebell events-worker`, or a thread
of `carebell demo`), with its own connections, so a slow or failing endpoint never
holds up a patient's message; and each endpoint has a cap on the requests in flight
to it, so one never holds up the others either.

The loop: hand new events on (`fan_out`: one EventDelivery per subscribed endpoint,
in one transaction with marking the events handed on); claim what is due at each
endpoint, up to its room, with a lease (`delivering`, due again when the lease
ends); POST each, signed, on an asyncio loop in a thread of its own (the database
stays on this thread, where Django wants it); record answers in bulk as they come.
A worker that dies leaves `delivering` rows that are due again when their lease
ends, and are sent again then — at least once, never lost; the receiver drops a
repeat by its `webhook-id`.

Per event (profiled at ~1,000/s): no query or commit of its own — a claim, a
record and a log statement serve a few hundred — one body made from the payload
text as stored, one HMAC per secret. The events worker shares no row, index or lock
with the dispatcher; what they share is the CPU and the database server. So while
a patient's message is due and waiting for a dispatcher, it gives way (a trickle:
see YIELD_BATCH): the patients' messages come first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp
from django.db import connection, transaction
from django.utils import timezone
from yarl import URL

from carebell.audit import trail
from carebell.core.event_delivery import Answer, Why, decide, parse_retry_after
from carebell.messaging.models import OutboundEvent
from carebell.outbound import _sql, signing, targets
from carebell.outbound.endpoints import secrets_in_force
from carebell.outbound.models import (
    DeliveryAttemptLog,
    DeliveryStatus,
    EventDelivery,
    WebhookEndpoint,
)

log = logging.getLogger("carebell.events_worker")

LEASE = dt.timedelta(seconds=60)
TIMEOUT_SECONDS = 10.0
PER_ENDPOINT = 32
FAN_OUT_BATCH = 1000
ENDPOINTS_FRESH = 1.0
FAN_OUT_PAUSE = 0.1
#: Deliveries claimed ahead per endpoint, in rounds of its cap: the next round waits
#: on this side, ready, while the database records the last. At most AHEAD rounds of
#: timeouts must fit in a lease (see `lease_for`).
AHEAD = 8
NOBODY_WAITS = 1 << 62
#: A busy worker's turn: at most this long between recording answers. Each turn
#: costs a few statements and commits whatever it carries, so fewer, fuller turns
#: cost less per event; the rounds claimed ahead keep the requests flowing meanwhile.
RECORD_EVERY = 0.1
#: While a patient's message is due and no dispatcher has taken it yet, the events
#: worker gives way: at most YIELD_BATCH deliveries claimed a turn and YIELD_PAUSE
#: seconds between turns: at most ~100 events/s (50 a quarter-second delivered ~55/s
#: on a loaded machine for ~2 % of a core, 12 % of what the dispatchers got there).
#: A trickle, not a stop: events still flow with no dispatcher running, or during
#: a campaign of hours. Asked at most every PATIENTS_FRESH s.
YIELD_BATCH = 50
YIELD_PAUSE = 0.5
PATIENTS_FRESH = 0.25


def lease_for(timeout_seconds: float) -> dt.timedelta:
    """A lease long enough for every round claimed ahead to time out."""
    return max(LEASE, dt.timedelta(seconds=timeout_seconds * (AHEAD + 1)))


@dataclass(frozen=True, slots=True)
class Job:
    """One signed POST, ready to go."""

    delivery: _sql.Claimed
    url: URL
    refused: str | None  # why its literal IP address may not be called
    headers: dict
    body: bytes
    token: dt.datetime


@dataclass(frozen=True, slots=True)
class Result:
    job: Job
    started_at: dt.datetime
    duration_ms: int
    status_code: int | None
    retry_after: str | None
    error: str


def fan_out(now: dt.datetime, limit: int = FAN_OUT_BATCH) -> int:
    """Hand up to `limit` new events to the enabled endpoints of their site that
    subscribe to their type (and existed when the event happened). Returns how
    many events were handed on."""
    if connection.vendor == "postgresql":
        with transaction.atomic():
            return _sql.fan_out_postgres(now, limit)
    with transaction.atomic():
        events = _sql.lock_unhanded_events(limit)
        if not events:
            return 0
        by_site: dict[int, list] = {}
        for endpoint in WebhookEndpoint.objects.filter(
            site_id__in={site_id for _, site_id, _, _ in events}, enabled=True
        ).values_list("id", "site_id", "event_types", "created_at"):
            by_site.setdefault(endpoint[1], []).append(endpoint)
        deliveries = [
            EventDelivery(
                endpoint_id=endpoint_id, event_id=event_id, message_id=signing.new_message_id(),
                due_at=now, created_at=now, retry_from=now,
            )
            for event_id, site_id, event_type, created_at in events
            for endpoint_id, _, types, since in by_site.get(site_id, ())
            if event_type in types and since <= created_at
        ]  # fmt: skip
        EventDelivery.objects.bulk_create(deliveries, ignore_conflicts=True, batch_size=1000)
        OutboundEvent.objects.filter(id__in=[e[0] for e in events]).update(delivered_at=now)
    return len(events)


class EventDeliverer:
    """Delivers what is due. `run()` is the worker's loop; `process_batch()` claims
    what is due, sends it and records the answers before returning (True when it
    found work), for `--once` and the tests."""

    def __init__(
        self,
        *,
        per_endpoint: int = PER_ENDPOINT,
        lease: dt.timedelta | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.per_endpoint = per_endpoint
        self.lease = lease or lease_for(timeout_seconds)
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.rng = rng or random.Random()
        #: Claimed and not yet recorded, per endpoint (queued here or in flight).
        self.in_flight: Counter[int] = Counter()
        #: Each endpoint's cap on requests in flight, on the HTTP loop.
        self._rooms_open: dict[int, asyncio.Semaphore] = {}
        #: Answers not yet recorded: the HTTP loop appends, this thread takes them all.
        self._answered: list[Result] = []
        self._answered_lock = threading.Lock()
        #: Set by the HTTP loop once `_answers_wanted` answers wait (see `_wait_for_answers`).
        self._enough_answers = threading.Event()
        self._answers_wanted = NOBODY_WAITS
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        #: The enabled endpoints, read again at most every ENDPOINTS_FRESH seconds:
        #: a change (a rotated secret, an endpoint switched off) applies within that.
        self._endpoints: dict[int, WebhookEndpoint] = {}
        self._endpoints_read = -ENDPOINTS_FRESH
        #: When the last turn found no event to hand on (see `_fan_out`).
        self._nothing_handed_at = -FAN_OUT_PAUSE
        #: Whether patients' messages are waiting for a dispatcher (see `_give_way`).
        self.yielding = False
        self._patients_waiting = False
        self._patients_asked = -PATIENTS_FRESH

    # -- the loop -------------------------------------------------------------------

    def run(self, stop: threading.Event, idle_seconds: float = 0.5) -> None:
        """Work until `stop` is set; then finish what is in flight and record it."""
        try:
            while not stop.is_set():
                try:
                    busy = self.step()
                except Exception:
                    log.exception("events_worker.step_failed")
                    busy = False
                if self.yielding:
                    self._wait_for_answers(YIELD_PAUSE, enough=NOBODY_WAITS)
                elif not busy or self.in_flight:
                    # Wait for half of what is in flight (or RECORD_EVERY) and record
                    # it in one go: a turn per answer would cost a commit per event.
                    half = max(1, sum(self.in_flight.values()) // 2)
                    self._wait_for_answers(RECORD_EVERY if busy else idle_seconds, enough=half)
            self._finish_in_flight()
        finally:
            self.close()

    def step(self, now: dt.datetime | None = None) -> bool:
        """One turn: hand events on, record the answers so far, claim and send more
        (less while patients' messages wait: see `_give_way`)."""
        now = now or timezone.now()
        self.yielding = self._give_way(now)
        handed = self._fan_out(now, YIELD_BATCH if self.yielding else FAN_OUT_BATCH)
        answered = self._record(self._answers())
        rooms = self._rooms()
        if self.yielding:
            rooms = _within(rooms, YIELD_BATCH)
        submitted = self._submit(self._claim(now, rooms))
        return bool(handed or answered or submitted)

    def process_batch(self, now: dt.datetime | None = None) -> bool:
        """Hand events on, then send everything due now and record it."""
        now = now or timezone.now()
        handed = fan_out(now)
        jobs = self._claim(now, self._rooms(fresh=True))
        self._submit(jobs)
        self._finish_in_flight()
        return bool(handed or jobs)

    def close(self) -> None:
        if self._loop is None:
            return
        if self._session is not None:
            asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = self._session = None

    # -- claiming -------------------------------------------------------------------

    def _give_way(self, now: dt.datetime) -> bool:
        """Whether patients' messages are due and waiting for a dispatcher: on a
        shared machine they come first (SPEC: events never slow them). The events
        worker shares no rows or locks with the dispatcher, only the CPU and the
        database server, so giving way means doing less, not waiting for a lock."""
        if time.monotonic() - self._patients_asked >= PATIENTS_FRESH:
            self._patients_waiting = _sql.patients_waiting(now)
            self._patients_asked = time.monotonic()
        return self._patients_waiting

    def _fan_out(self, now: dt.datetime, limit: int = FAN_OUT_BATCH) -> int:
        """`fan_out`, skipped for FAN_OUT_PAUSE after a turn that found nothing: a busy
        worker's turns come many times a second."""
        if time.monotonic() - self._nothing_handed_at < FAN_OUT_PAUSE:
            return 0
        handed = fan_out(now, limit)
        if not handed:
            self._nothing_handed_at = time.monotonic()
        return handed

    def _enabled(self, fresh: bool = False) -> dict[int, WebhookEndpoint]:
        if fresh or time.monotonic() - self._endpoints_read >= ENDPOINTS_FRESH:
            self._endpoints = WebhookEndpoint.objects.filter(enabled=True).in_bulk()
            self._endpoints_read = time.monotonic()
        return self._endpoints

    def _rooms(self, fresh: bool = False) -> dict[int, int]:
        ahead = self.per_endpoint * AHEAD
        return {e: ahead - self.in_flight[e] for e in self._enabled(fresh)}

    def _claim(self, now: dt.datetime, rooms: dict[int, int]) -> list[Job]:
        token = now + self.lease
        with transaction.atomic():
            claimed = _sql.claim(rooms, now, token)
            self._note_lost_leases(claimed, now)
        if not claimed:
            return []
        endpoints = self._endpoints  # as `rooms` saw them, not read again in between
        bodies: dict[int, bytes] = {}  # an event's body is made once, for all its endpoints
        # Each URL parsed and checked once a batch, not once a POST.
        urls = {
            e: (URL(endpoints[e].url), targets.literal_refusal(endpoints[e].url))
            for e in {d.endpoint_id for d in claimed}
        }
        jobs = []
        for delivery in claimed:
            endpoint = endpoints[delivery.endpoint_id]
            body = bodies.get(delivery.event_id)
            if body is None:
                body = bodies[delivery.event_id] = signing.body_of(
                    delivery.event_type, delivery.payload, delivery.happened_at
                )
            secrets = secrets_in_force(endpoint, now)
            headers = signing.headers_for(delivery.message_id, secrets, body, now)
            jobs.append(Job(delivery, *urls[delivery.endpoint_id], headers, body, token))
        return jobs

    @staticmethod
    def _note_lost_leases(claimed: list[_sql.Claimed], now: dt.datetime) -> None:
        """A delivery claimed again after its lease ran out: its last attempt's answer
        was never recorded (the worker stopped). Say so in its log."""
        lost = [
            DeliveryAttemptLog(
                delivery_id=c.id, number=c.attempts - 1, started_at=now,
                error="the worker stopped before recording an answer; sent again",
                outcome=Answer.RETRY,
            )
            for c in claimed
            if c.was_delivering and c.attempts > 1
        ]  # fmt: skip
        if lost:
            DeliveryAttemptLog.objects.bulk_create(lost)

    # -- sending --------------------------------------------------------------------

    def _submit(self, jobs: list[Job]) -> int:
        """Hand `jobs` to the HTTP loop in one go: one wake-up of its thread per
        batch, not one per job (a cross-thread future per job cost more CPU than
        signing it)."""
        if not jobs:
            return 0
        loop = self._event_loop()
        for job in jobs:
            self.in_flight[job.delivery.endpoint_id] += 1
        loop.call_soon_threadsafe(self._start_all, jobs)
        return len(jobs)

    def _start_all(self, jobs: list[Job]) -> None:
        # On the HTTP loop. The loop keeps only weak references to its tasks.
        for job in jobs:
            task = self._loop.create_task(self._post(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, job: Job) -> None:
        endpoint_id = job.delivery.endpoint_id
        room = self._rooms_open.get(endpoint_id)
        if room is None:
            room = self._rooms_open[endpoint_id] = asyncio.Semaphore(self.per_endpoint)
        try:
            async with room:
                result = await self._post_now(job)
        except Exception as error:  # a bug in sending: recorded as a failed attempt, retried
            log.exception("events_worker.send_failed")
            result = Result(job, timezone.now(), 0, None, None, type(error).__name__)
        with self._answered_lock:
            self._answered.append(result)
            if len(self._answered) >= self._answers_wanted:
                self._enough_answers.set()

    async def _post_now(self, job: Job) -> Result:
        started_at, clock = timezone.now(), time.monotonic()
        if job.refused is not None:
            return Result(job, started_at, 0, None, None, job.refused)
        try:
            async with self._session.post(
                job.url, data=job.body, headers=job.headers, allow_redirects=False
            ) as response:
                await response.content.read(65_536)  # enough to keep the connection
                status, retry_after, error = (
                    response.status,
                    response.headers.get("Retry-After"),
                    "",
                )
        except aiohttp.ClientConnectorError as failure:
            status, retry_after = None, None
            os_error = getattr(failure, "os_error", None)
            refused = isinstance(os_error, targets.AddressRefused)
            error = str(os_error) if refused else "connection failed"
        except TimeoutError:
            status, retry_after, error = None, None, "no answer in time"
        except aiohttp.ClientError as failure:
            status, retry_after, error = None, None, type(failure).__name__
        duration = int((time.monotonic() - clock) * 1000)
        return Result(job, started_at, duration, status, retry_after, error[:200])

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="carebell-events-http", daemon=True
            )
            self._thread.start()

            async def make() -> aiohttp.ClientSession:
                connector = aiohttp.TCPConnector(
                    limit=0, resolver=targets.PublicResolver(), keepalive_timeout=60
                )
                return aiohttp.ClientSession(
                    connector=connector, timeout=self.timeout,
                    cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                )  # fmt: skip

            self._session = asyncio.run_coroutine_threadsafe(make(), self._loop).result(10)
        return self._loop

    # -- recording ------------------------------------------------------------------

    def _answers(self) -> list[Result]:
        with self._answered_lock:
            results, self._answered = self._answered, []
        return results

    def _wait_for_answers(self, seconds: float, enough: int = 1) -> None:
        """Sleep until `enough` answers are waiting to be recorded, or `seconds`
        passed (they stay for the next turn)."""
        with self._answered_lock:
            if len(self._answered) >= enough:
                return
            self._answers_wanted = enough
            self._enough_answers.clear()
        self._enough_answers.wait(seconds)
        with self._answered_lock:
            self._answers_wanted = NOBODY_WAITS

    def _finish_in_flight(self) -> None:
        deadline = time.monotonic() + self.timeout.total + 5
        while self.in_flight and (left := deadline - time.monotonic()) > 0:
            self._wait_for_answers(left)
            if not self._record(self._answers()):
                break

    def _record(self, results: list[Result]) -> int:
        if not results:
            return 0
        now = timezone.now()
        rows, logs, gone = [], [], set()
        for result in results:
            self.in_flight[result.job.delivery.endpoint_id] -= 1
            row, entry = self._outcome(result, now)
            rows.append(row)
            logs.append(entry)
            if entry.outcome == Answer.GONE:
                gone.add(result.job.delivery.endpoint_id)
        self.in_flight += Counter()  # drop the endpoints with nothing in flight
        with transaction.atomic():
            _sql.record(rows)
            _sql.log_attempts(logs)
            if gone:
                _disable_gone(gone, now)
        return len(results)

    def _outcome(self, result: Result, now: dt.datetime):
        delivery = result.job.delivery
        decision = decide(
            status_code=result.status_code,
            attempts=delivery.attempts,
            created_at=delivery.retry_from,
            now=now,
            retry_after=parse_retry_after(result.retry_after, now),
            rng=self.rng,
        )
        status = {
            Answer.DELIVERED: DeliveryStatus.DELIVERED,
            Answer.RETRY: DeliveryStatus.PENDING,
        }.get(decision.answer, DeliveryStatus.FAILED)
        finished = None if status == DeliveryStatus.PENDING else now
        error = result.error or _why_text(decision.reasons)
        row = _sql.Recorded(
            delivery.id, status, decision.retry_at or now, finished, result.status_code,
            error[:200], result.job.token,
        )  # fmt: skip
        entry = _sql.Logged(
            delivery.id, delivery.attempts, result.started_at, result.duration_ms,
            result.status_code, error[:200], decision.answer.value,
        )  # fmt: skip
        return row, entry


def _within(rooms: dict[int, int], budget: int) -> dict[int, int]:
    """`rooms` cut to about `budget` in all, shared evenly (at least one each)."""
    share = max(1, budget // max(1, len(rooms)))
    return {endpoint: min(room, share) for endpoint, room in rooms.items()}


_WHY_TEXT = {
    Why.ACCEPTED: "",
    Why.GONE: "the endpoint answered 410 Gone: switched off",
    Why.SERVER_ERROR: "server error",
    Why.CLIENT_ERROR: "refused by the endpoint",
    Why.REDIRECT: "redirect not followed",
    Why.NO_ANSWER: "no answer",
    Why.RETRY_AFTER: "Retry-After honoured",
    Why.SCHEDULE_SPENT: "given up: every retry used",
    Why.TOO_OLD: "given up: about three days of retries",
}


def _why_text(reasons) -> str:
    return "; ".join(t for t in (_WHY_TEXT[r] for r in reasons) if t)


def _disable_gone(endpoint_ids: set[int], now: dt.datetime) -> None:
    """Switch off endpoints that answered 410 Gone, and say so in the audit log."""
    for endpoint in WebhookEndpoint.objects.filter(id__in=endpoint_ids, enabled=True):
        endpoint.enabled = False
        endpoint.disabled_reason = WebhookEndpoint.Disabled.GONE
        endpoint.updated_at = now
        endpoint.save(update_fields=["enabled", "disabled_reason", "updated_at"])
        trail.record(
            None, "change", endpoint, at=now,
            detail={"fields": ["enabled", "disabled_reason"], "system": "events-worker"},
        )  # fmt: skip
