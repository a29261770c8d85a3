"""The dispatcher: claim due messages in batches, check them again, send, record.

One batch costs three commits whatever its size: the claim, the attempt rows
(saved before any provider is called, so their ids travel in the status-callback
URL), and the results. Claims are leases: a worker that dies leaves its rows to
come back when the lease expires, and an attempt it left unfinished is reconciled
with the provider (lookup, or the same idempotency key) before anything is resent.

A claim's lease expiry doubles as its token. A worker slow enough for its lease to
run out before it saved its attempts may find the rows claimed again by another:
the token no longer matches, so it leaves those messages to the other worker
instead of racing it for attempt #1.

Rows travel as plain records (`dispatch_rows.Claimed`) and are written with
set-based statements; model instances and a statement per row cost more CPU than
the HTTP call itself (profiled at 1,500 messages/s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import aiohttp
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from carebell.core.reasons import Reason
from carebell.core.retry import RetryPolicy, decide_retry
from carebell.core.vocab import BlockReason, OutboxStatus
from carebell.messaging import actions, checks, pacing, rendering
from carebell.messaging.dispatch_rows import (
    Claimed,
    NewAttempt,
    Outcome,
    insert_attempts,
    load_claimed,
    record_outcomes,
    start_sending,
    update_rows,
)
from carebell.messaging.models import DeliveryAttempt, OutboxMessage
from carebell.messaging.policies import PolicyCache
from carebell.messaging.provider_set import ProviderSet
from carebell.providers.base import OutgoingMessage, Provider, SendResult

log = logging.getLogger("carebell.dispatcher")

TABLE = OutboxMessage._meta.db_table
DUE_STATUSES = ("scheduled", "queued", "sending")


def claim_due(now: dt.datetime, limit: int, lease_until: dt.datetime, worker: str) -> list[int]:
    """Lease up to `limit` due messages to this worker and return their ids.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent workers never take the same
    row and never wait for each other. SQLite has one writer at a time, so the same
    conditional UPDATE is atomic there without it. `lease_until` is written to
    `lease_expires_at` and is the claim's token (see the module docstring).
    """
    skip_locked = "FOR UPDATE SKIP LOCKED" if connection.vendor == "postgresql" else ""
    sql = f"""
        UPDATE {TABLE} SET due_at = %s, lease_expires_at = %s, updated_at = %s
        WHERE id IN (
            SELECT id FROM {TABLE}
            WHERE status IN ('scheduled', 'queued', 'sending') AND due_at <= %s
            ORDER BY due_at LIMIT %s {skip_locked}
        )
        RETURNING id"""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [lease_until, lease_until, now, now, limit])
        return [row[0] for row in cursor.fetchall()]


@dataclass
class Batch:
    """One claimed batch on its way through the dispatcher."""

    now: dt.datetime
    token: dt.datetime  # the claim's lease expiry
    messages: list[Claimed]
    to_send: list[tuple[Claimed, NewAttempt | DeliveryAttempt, Provider]] = field(
        default_factory=list
    )
    reconciled: list[tuple[Claimed, DeliveryAttempt, SendResult]] = field(default_factory=list)


class Dispatcher:
    """Sends what is due. `process_batch()` returns True when it found work (go on at
    once) and False when there was nothing due (sleep)."""

    def __init__(
        self,
        *,
        batch_size: int = 200,
        concurrency: int = 64,
        lease: dt.timedelta = dt.timedelta(minutes=2),
        retry_policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.worker_id = f"worker-{uuid.uuid4().hex[:8]}"
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.retry_policy = retry_policy or RetryPolicy()
        self.rng = rng or random.Random()
        self.policies = PolicyCache()
        self.providers = ProviderSet()
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None

    # -- the loop ---------------------------------------------------------------

    def run(self, stop: threading.Event, idle_seconds: float = 1.0) -> None:
        """Work until `stop` is set, sleeping `idle_seconds` when nothing is due.

        A batch that fails unexpectedly is logged and left to its lease: its messages
        come back when the lease expires, and the worker goes on with the others
        rather than dying (and being restarted into the same failure)."""
        try:
            while not stop.is_set():
                try:
                    busy = self.process_batch()
                except Exception:
                    log.exception(
                        "dispatcher.batch_failed", extra={"ids": {"worker": self.worker_id}}
                    )
                    busy = False
                if not busy:
                    stop.wait(idle_seconds)
        finally:
            self.close()

    def process_batch(self, now: dt.datetime | None = None) -> bool:
        now = now or timezone.now()
        token = now + self.lease
        ids = claim_due(now, self.batch_size, token, self.worker_id)
        if not ids:
            return False
        batch = Batch(now=now, token=token, messages=load_claimed(ids))
        self._reconcile_unfinished(batch)
        self._check_and_render(batch)
        self._start_attempts(batch)
        results = self._send(batch)
        self._record(batch, results)
        return True

    def close(self) -> None:
        if self._session is not None:
            self._loop.run_until_complete(self._session.close())
            self._session = None
        self._loop.close()

    # -- steps ------------------------------------------------------------------

    def _provider(self, message: Claimed) -> Provider:
        return self.providers.for_site(message.channel, message.site)

    def _reconcile_unfinished(self, batch: Batch) -> None:
        """A message whose last attempt never finished was claimed by a worker that
        died mid-send. Ask the provider before sending again (SPEC: no loss, no
        duplicate): known → record it; unknown → resend under the same attempt."""
        sending = [m.id for m in batch.messages if m.status == OutboxStatus.SENDING]
        if not sending:
            return
        unfinished = {
            a.message_id: a
            for a in DeliveryAttempt.objects.filter(
                message_id__in=sending, finished_at__isnull=True
            )
        }
        for message in list(batch.messages):
            attempt = unfinished.get(message.id)
            if attempt is None:
                continue
            found = self._lookup(self._provider(message), attempt)
            if found is not None and found.accepted:
                batch.messages.remove(message)
                batch.reconciled.append((message, attempt, found))
            else:
                message.resume_attempt = attempt  # resend under the same idempotency key

    def _lookup(self, provider: Provider, attempt: DeliveryAttempt) -> SendResult | None:
        if not provider.limits.supports_lookup:
            return None
        try:
            return self._loop.run_until_complete(
                provider.lookup(
                    self._client(),
                    provider_message_id=attempt.provider_message_id,
                    idempotency_key=attempt.idempotency_key,
                )
            )
        except Exception:
            log.warning("dispatcher.lookup_failed", extra={"ids": {"attempt_id": attempt.id}})
            return None

    def _check_and_render(self, batch: Batch) -> None:
        entities = rendering.load_entities(batch.messages)
        verdicts = checks.check_at_send(batch.messages, batch.now, self.policies, entities)
        rendering.render_batch([m for m in batch.messages if m.id not in verdicts], entities)
        verdicts.update(checks.check_content(batch.messages, verdicts))
        checks.apply_verdicts(verdicts, batch.now)
        batch.messages = [m for m in batch.messages if m.id not in verdicts]

    def _start_attempts(self, batch: Batch) -> None:
        """Save an attempt row per message before any provider is called, for the
        messages whose claim is still this worker's."""
        batch.messages, later = pacing.admit(batch.messages, batch.now, self.providers)
        for message_id, slot in later.items():
            actions.defer_message(message_id, slot, (), batch.now)
        with transaction.atomic():
            ours = start_sending(batch.messages, batch.token, batch.now + self.lease, batch.now)
            lost = len(batch.messages) - len(ours)
            batch.messages = [m for m in batch.messages if m.id in ours]
            fresh = [m for m in batch.messages if m.resume_attempt is None]
            attempts = insert_attempts(
                [(m, self._provider(m).name) for m in fresh], started_at=batch.now
            )
        if lost:
            log.warning(
                "dispatcher.lease_lost", extra={"ids": {"worker": self.worker_id, "count": lost}}
            )
        for message in batch.messages:
            attempt = message.resume_attempt or attempts.get(message.id)
            if attempt is not None:
                batch.to_send.append((message, attempt, self._provider(message)))

    def _send(self, batch: Batch) -> dict[int, SendResult]:
        by_provider: dict[str, list[OutgoingMessage]] = defaultdict(list)
        providers: dict[str, Provider] = {}
        base_url = settings.BASE_URL
        for message, attempt, provider in batch.to_send:
            providers[provider.name] = provider
            by_provider[provider.name].append(_outgoing(message, attempt, base_url))
        results: dict[int, SendResult] = {}
        for name, outgoing in by_provider.items():
            sent = self._loop.run_until_complete(
                providers[name].send_batch(self._client(), outgoing)
            )
            results.update((r.attempt_id, r) for r in sent)
        return results

    def _record(self, batch: Batch, results: dict[int, SendResult]) -> None:
        recorder = _Recorder(batch.now, self)
        for message, attempt, _ in batch.to_send:
            recorder.add(message, attempt, results[attempt.id])
        for message, attempt, result in batch.reconciled:
            recorder.add(message, attempt, result)
        with transaction.atomic():
            moved = record_outcomes(batch.now, recorder.attempt_rows, recorder.outcomes)
        for message in recorder.opt_outs:
            if message.id in moved:
                actions.opt_out_address(
                    message.site_id,
                    message.to_address,
                    message.channel,
                    source="provider_error",
                    detail=message.error_code,
                    now=batch.now,
                )

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:

            async def make() -> aiohttp.ClientSession:
                # As many connections as requests in flight; no cookies (a REST API
                # sets none we need, and the jar costs CPU on every request).
                connector = aiohttp.TCPConnector(limit=self.concurrency, keepalive_timeout=60)
                return aiohttp.ClientSession(
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(total=30, connect=10),
                    cookie_jar=aiohttp.DummyCookieJar(),
                )

            self._session = self._loop.run_until_complete(make())
        return self._session


def _outgoing(message: Claimed, attempt, base_url: str) -> OutgoingMessage:
    return OutgoingMessage(
        attempt_id=attempt.id,
        channel=message.channel,
        to=message.to_address,
        sender=rendering.sender_for(message),
        body=message.body,
        subject=message.subject,
        html=message.html_body,
        language=message.language,
        status_callback_url=f"{base_url}/hooks/{attempt.provider}/status/{attempt.id}",
        idempotency_key=attempt.idempotency_key,
        headers=rendering.headers_for(message),
        site_id=message.site_id,
        kind=message.kind,
    )


class _Recorder:
    """Turns a batch's outcomes into rows: finished attempts, and each message's new
    state with the event that says why. `record_outcomes` applies the latter only to
    messages still `sending` (a status callback may have moved one on already)."""

    def __init__(self, now: dt.datetime, dispatcher: Dispatcher) -> None:
        self.now = now
        self.dispatcher = dispatcher
        self.attempt_rows: list[tuple] = []
        self.outcomes: list[Outcome] = []
        self.opt_outs: list[Claimed] = []

    def add(self, message: Claimed, attempt, result: SendResult) -> None:
        self.attempt_rows.append(
            (
                attempt.id,
                result.provider_message_id,
                result.status if result.accepted else "failed",
                result.error_code[:32],
                result.error_message[:300],
                result.permanent,
            )
        )
        message.provider = attempt.provider
        if result.accepted:
            outcome = self._accepted(message, result)
        elif result.permanent:
            outcome = self._failed(message, result, [])
        else:
            outcome = self._retry(message, result)
        self.outcomes.append(outcome)

    def _accepted(self, message: Claimed, result: SendResult) -> Outcome:
        status = OutboxStatus.DELIVERED if result.status == "delivered" else OutboxStatus.SENT
        delivered = status == OutboxStatus.DELIVERED
        return Outcome(
            message.id, status, message.provider, result.provider_message_id, True, delivered,
            None, "", None, None, status, "[]", "",
        )  # fmt: skip

    def _failed(self, message: Claimed, result: SendResult, reasons: list[Reason]) -> Outcome:
        message.error_code = result.error_code[:32]
        stored = actions.reasons_json(reasons)
        if result.opt_out:
            self.opt_outs.append(message)
        return Outcome(
            message.id, OutboxStatus.FAILED, message.provider, None, False, True, None,
            message.error_code, result.error_message[:300],
            json.dumps([*message.reasons, *stored]), OutboxStatus.FAILED, json.dumps(stored),
            result.error_code[:300],
        )  # fmt: skip

    def _retry(self, message: Claimed, result: SendResult) -> Outcome:
        decision = decide_retry(
            now=self.now,
            attempts=message.attempts,
            # Age counts from when the message first could go, not from when it was
            # planned (days ahead): otherwise a reminder's first failure is "too old".
            first_due_at=max(message.created_at, message.planned_at),
            retry_after=result.retry_after,
            not_after=message.not_after,
            policy=self.dispatcher.retry_policy,
            rng=self.dispatcher.rng,
        )
        if decision.gives_up:
            return self._failed(message, result, list(decision.reasons))
        reasons = json.dumps(actions.reasons_json(decision.reasons))
        return Outcome(
            message.id, OutboxStatus.SENDING, message.provider, None, False, False,
            decision.retry_at, result.error_code[:32], result.error_message[:300], None,
            OutboxStatus.SENDING, reasons, result.error_code[:300],
        )  # fmt: skip


__all__ = ["BlockReason", "Dispatcher", "claim_due", "update_rows"]
