"""The dispatcher: claim due messages in batches, check them again, send, record.

One batch costs two commits whatever its size. The first locks the due rows
(PostgreSQL: FOR UPDATE SKIP LOCKED, so workers never wait for each other; SQLite:
the one write lock), checks and renders them, and saves their attempt rows with
status `sending` and a lease — attempts are saved before any provider is called,
so their ids travel in the status-callback URL. The second stores the results.

A worker that dies before the first commit leaves nothing behind: the rows were
only locked. One that dies after it leaves `sending` rows whose lease expires,
with unfinished attempts. A send whose answer was lost — a read timeout, a
connection dropped after the request was written — leaves the same: an attempt
whose outcome is `unknown`, not a failure, since the provider may have accepted
it. Such attempts are settled with the provider before anything is resent
(`core.retry.decide_unsettled`): what its lookup finds is recorded; a provider
that honours idempotency keys is sent the same attempt again under its own key;
one that does not is resent only once it says it never got the message, asked
again while unsure, and the message ends unconfirmed (`sent`, with the reason)
rather than reach the patient twice. A status callback to the attempt's URL
settles it too (`outbox.record_status`). Settling calls the provider, so it runs
outside the claiming transaction: those rows are leased at once, and the lease
expiry is their token — if this worker's lease ran out meanwhile and another
worker claimed them, the token no longer matches and this worker leaves them to
the other instead of racing it.

Rows travel as plain records (`dispatch.rows.Claimed`) and are written with
set-based statements; model instances and a statement per row cost more CPU than
the HTTP call itself, and each extra write of an outbox row costs PostgreSQL an
entry in each of its indexes (profiled at 1,500 messages/s).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

import aiohttp
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carebell import outbox
from carebell.core.retry import (
    Lookup,
    RetryPolicy,
    Settle,
    SettleDecision,
    decide_unsettled,
)
from carebell.core.vocab import OutboxStatus
from carebell.dispatch import checks, pacing, rendering
from carebell.dispatch.outcomes import Recorder, first_due_at
from carebell.dispatch.provider_set import ProviderSet
from carebell.dispatch.rows import Claimed, load_claimed
from carebell.messaging.models import DeliveryAttempt
from carebell.planning.policies import PolicyCache
from carebell.providers.base import OutgoingMessage, Provider, SendResult
from carebell.twoway import consent

log = logging.getLogger("carebell.dispatcher")


@dataclass
class Batch:
    """One claimed batch on its way through the dispatcher."""

    now: dt.datetime
    token: dt.datetime  # the lease expiry, token of the rows leased for reconciling
    messages: list[Claimed]
    unfinished: list[tuple[Claimed, DeliveryAttempt]] = field(default_factory=list)
    to_send: list[tuple[Claimed, outbox.NewAttempt | DeliveryAttempt, Provider]] = field(
        default_factory=list
    )
    reconciled: list[tuple[Claimed, DeliveryAttempt, SendResult]] = field(default_factory=list)
    #: Unsettled attempts to ask about again later, or to end without a resend.
    settled: list[tuple[Claimed, DeliveryAttempt, SettleDecision]] = field(default_factory=list)


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
        timeout_seconds: float = 30.0,
    ) -> None:
        self.worker_id = f"worker-{uuid.uuid4().hex[:8]}"
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.retry_policy = retry_policy or RetryPolicy()
        # A request unanswered after this long is an attempt whose outcome is unknown.
        self.timeout = aiohttp.ClientTimeout(
            total=timeout_seconds, connect=min(10.0, timeout_seconds)
        )
        self.rng = rng or random.Random()
        self.policies = PolicyCache()
        self.providers = ProviderSet()
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._chosen: dict[tuple[str, int], Provider] = {}

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
        self._chosen = {}
        with transaction.atomic():
            ids = outbox.lock_due(now, self.batch_size)
            if not ids:
                return False
            batch = Batch(now=now, token=now + self.lease, messages=load_claimed(ids))
            self._set_aside_unfinished(batch)
            self._prepare(batch)
        if batch.unfinished:
            self._reconcile_unfinished(batch)
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
        # Per batch (a site's choice may change between batches), per site and channel.
        key = (message.channel, message.site_id)
        provider = self._chosen.get(key)
        if provider is None:
            provider = self._chosen[key] = self.providers.for_site(message.channel, message.site)
        return provider

    def _set_aside_unfinished(self, batch: Batch) -> None:
        """A message whose last attempt is unfinished — its outcome unknown, or its
        worker died mid-send — is leased, to settle after this transaction."""
        sending = [m.id for m in batch.messages if m.status == OutboxStatus.SENDING]
        if not sending:
            return
        unfinished = {
            a.message_id: a
            for a in DeliveryAttempt.objects.filter(
                message_id__in=sending, finished_at__isnull=True
            )
        }
        if not unfinished:
            return
        batch.unfinished = [(m, unfinished[m.id]) for m in batch.messages if m.id in unfinished]
        batch.messages = [m for m in batch.messages if m.id not in unfinished]
        outbox.lease(list(unfinished), batch.token, batch.now)

    def _reconcile_unfinished(self, batch: Batch) -> None:
        """Settle each unfinished attempt before anything is sent again (SPEC: sent
        once, or a state that says why not): ask the provider, then record what it
        has, resend under the same attempt (its idempotency key) after the same
        checks as any message, ask again later, or end the message unresent."""
        session = self._client()
        # Providers and payloads first: building them may read the database, which
        # Django allows only outside the event loop.
        asks = [(self._provider(m), m, a) for m, a in batch.unfinished]
        questions = [(p, a, _outgoing(m, a, settings.BASE_URL)) for p, m, a in asks]
        answers = self._loop.run_until_complete(self._ask_all(session, questions))
        resend = []
        for (provider, message, attempt), (lookup, found) in zip(asks, answers, strict=True):
            limits = provider.limits
            decision = decide_unsettled(
                now=batch.now,
                lookup=lookup,
                started_at=attempt.started_at,
                number=attempt.number,
                can_dedupe=limits.supports_idempotency,
                not_found_settles_after=limits.lookup_settles_after,
                first_due_at=first_due_at(message),
                not_after=message.not_after,
                policy=self.retry_policy,
                rng=self.rng,
            )
            if decision.action is Settle.RECORD:
                batch.reconciled.append((message, attempt, found))
            elif decision.action is Settle.RESEND:
                message.resume_attempt = attempt  # the same idempotency key
                resend.append(message)
            else:
                batch.settled.append((message, attempt, decision))
        if resend:
            again = Batch(now=batch.now, token=batch.token, messages=resend)
            with transaction.atomic():
                self._prepare(again, token=batch.token)
            batch.to_send.extend(again.to_send)

    async def _ask_all(
        self,
        session: aiohttp.ClientSession,
        questions: list[tuple[Provider, DeliveryAttempt, OutgoingMessage]],
    ) -> list[tuple[Lookup, SendResult | None]]:
        """The providers' answers about these attempts, asked concurrently."""
        room = asyncio.Semaphore(self.concurrency)

        async def ask(provider: Provider, attempt: DeliveryAttempt, sent: OutgoingMessage):
            async with room:
                return await self._ask(session, provider, attempt, sent)

        return await asyncio.gather(*(ask(*question) for question in questions))

    @staticmethod
    async def _ask(
        session: aiohttp.ClientSession,
        provider: Provider,
        attempt: DeliveryAttempt,
        sent: OutgoingMessage,
    ) -> tuple[Lookup, SendResult | None]:
        if not provider.limits.supports_lookup:
            return Lookup.CANNOT_SAY, None
        try:
            found = await provider.lookup(
                session,
                provider_message_id=attempt.provider_message_id,
                idempotency_key=attempt.idempotency_key,
                message=sent,
                since=attempt.started_at,
            )
        except Exception as error:
            ids = {"attempt_id": attempt.id, "error": type(error).__name__}
            log.warning("dispatcher.lookup_failed", extra={"ids": ids})
            return Lookup.CANNOT_SAY, None
        if found is None or not found.accepted:
            return Lookup.NOT_FOUND, None
        return Lookup.FOUND, found

    def _prepare(self, batch: Batch, token: dt.datetime | None = None) -> None:
        """Check and render, then save attempts (in the caller's transaction)."""
        self._check_and_render(batch)
        self._start_attempts(batch, token)

    def _check_and_render(self, batch: Batch) -> None:
        entities = rendering.load_entities(batch.messages)
        verdicts = checks.check_at_send(batch.messages, batch.now, self.policies, entities)
        rendering.render_batch([m for m in batch.messages if m.id not in verdicts], entities)
        verdicts.update(checks.check_content(batch.messages, verdicts))
        checks.apply_verdicts(verdicts, batch.now)
        batch.messages = [m for m in batch.messages if m.id not in verdicts]

    def _start_attempts(self, batch: Batch, token: dt.datetime | None = None) -> None:
        """Save an attempt row per message before any provider is called. With a
        `token`, only for the messages whose lease still carries it."""
        batch.messages, later = pacing.admit(batch.messages, batch.now, self.providers)
        for message_id, slot in later.items():
            outbox.defer_message(message_id, slot, (), batch.now)
        ours = outbox.start_sending(batch.messages, batch.now + self.lease, batch.now, token=token)
        if lost := len(batch.messages) - len(ours):
            log.warning(
                "dispatcher.lease_lost", extra={"ids": {"worker": self.worker_id, "count": lost}}
            )
        batch.messages = [m for m in batch.messages if m.id in ours]
        fresh = [m for m in batch.messages if m.resume_attempt is None]
        attempts = outbox.insert_attempts(
            [(m, self._provider(m).name) for m in fresh], started_at=batch.now
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
        recorder = Recorder(batch.now, self.retry_policy, self.rng)
        for message, attempt, _ in batch.to_send:
            recorder.add(message, attempt, results[attempt.id])
        for message, attempt, result in batch.reconciled:
            recorder.add(message, attempt, result)
        for message, attempt, decision in batch.settled:
            recorder.settle(message, attempt, decision)
        with transaction.atomic():
            moved = outbox.record_outcomes(batch.now, recorder.attempt_rows, recorder.outcomes)
        for message in recorder.opt_outs:
            if message.id in moved:
                consent.opt_out_address(
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
                    timeout=self.timeout,
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
