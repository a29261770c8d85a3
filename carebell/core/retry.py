"""When to try a failed send again, and what to do about one whose outcome is
unknown (pure).

Transient provider failures are retried with jittered exponential backoff, never
sooner than the provider's Retry-After, and given up after a maximum number of
attempts or a maximum age — or once the event the message is about has passed.

An attempt whose request may have reached the provider without an answer coming
back (a timeout, a connection dropped after the request was written, a worker that
died mid-send) is not a failure: the provider may have the message. It is settled
before anything is sent again (SPEC: a planned message is sent once, or ends in a
state that says why not) — see `decide_unsettled`.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from enum import StrEnum

from carebell.core.reasons import Code, Reason, reason


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 6
    max_age: dt.timedelta = dt.timedelta(hours=24)
    #: The first look at an attempt whose outcome is unknown comes after about this
    #: long; later looks back off from there, up to `cap_seconds`.
    check_seconds: float = 30.0
    #: How long a provider that can neither look an attempt up nor recognise its
    #: resend may stay unsure before the message ends, unconfirmed, without a resend.
    unknown_wait: dt.timedelta = dt.timedelta(hours=1)


@dataclass(frozen=True)
class RetryDecision:
    retry_at: dt.datetime | None
    reasons: tuple[Reason, ...]

    @property
    def gives_up(self) -> bool:
        return self.retry_at is None


def backoff_seconds(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full-jitter exponential backoff for the `attempt`-th failure (1-based): a
    uniform draw below min(cap, base · 2^(attempt-1)), so workers that failed
    together do not come back together."""
    ceiling = min(policy.cap_seconds, policy.base_seconds * 2 ** (attempt - 1))
    return rng.uniform(ceiling / 2, ceiling)


def decide_retry(
    *,
    now: dt.datetime,
    attempts: int,
    first_due_at: dt.datetime,
    retry_after: float | None,
    not_after: dt.datetime | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> RetryDecision:
    """Whether and when to try again after `attempts` transient failures: not when
    the attempts or the age since `first_due_at` are used up, nor at or after the
    message's deadline `not_after`."""
    if attempts >= policy.max_attempts:
        return RetryDecision(None, (reason(Code.RETRIES_EXHAUSTED, attempts=attempts),))
    delay = backoff_seconds(attempts, policy, rng)
    if retry_after is not None:
        delay = max(delay, retry_after)
    retry_at = now + dt.timedelta(seconds=delay)
    if retry_at - first_due_at > policy.max_age:
        return RetryDecision(None, (reason(Code.RETRIES_EXHAUSTED, attempts=attempts),))
    if not_after is not None and retry_at >= not_after:
        return RetryDecision(None, (reason(Code.TARGET_PASSED, target=not_after),))
    return RetryDecision(retry_at, (reason(Code.RETRY_SCHEDULED, attempt=attempts, at=retry_at),))


class Lookup(StrEnum):
    """What the provider said when asked about an attempt whose outcome is unknown."""

    FOUND = "found"  # it has the message
    NOT_FOUND = "not_found"  # it has no record of it
    CANNOT_SAY = "cannot_say"  # no lookup, the lookup failed, or its answer was unclear


class Settle(StrEnum):
    """What to do about an attempt whose outcome is unknown."""

    RECORD = "record"  # record what the provider has
    RESEND = "resend"  # send again under the same attempt (its idempotency key)
    WAIT = "wait"  # ask again at `at`; its status callback may settle it first
    UNCONFIRMED = "unconfirmed"  # stop asking; not sent again (it may have arrived)
    FAIL = "fail"  # the provider never got it and it may no longer be sent


@dataclass(frozen=True)
class SettleDecision:
    action: Settle
    at: dt.datetime | None
    reasons: tuple[Reason, ...]


def next_check(
    *,
    now: dt.datetime,
    started_at: dt.datetime,
    number: int,
    policy: RetryPolicy,
    rng: random.Random,
) -> SettleDecision:
    """When to ask the provider about attempt `number` (started at `started_at`),
    whose outcome is unknown: about `check_seconds` after it started at first, then
    backing off with the time already waited (jittered, at most `cap_seconds`)."""
    waited = max(0.0, (now - started_at).total_seconds())
    ceiling = min(policy.cap_seconds, max(policy.check_seconds, waited))
    at = now + dt.timedelta(seconds=rng.uniform(ceiling / 2, ceiling))
    return SettleDecision(Settle.WAIT, at, (reason(Code.OUTCOME_UNKNOWN, attempt=number, at=at),))


def decide_unsettled(
    *,
    now: dt.datetime,
    lookup: Lookup,
    started_at: dt.datetime,
    number: int,
    can_dedupe: bool,
    not_found_settles_after: float,
    first_due_at: dt.datetime,
    not_after: dt.datetime | None,
    policy: RetryPolicy,
    rng: random.Random,
) -> SettleDecision:
    """What to do about attempt `number`, whose outcome is unknown, now that the
    provider answered `lookup`.

    Found: record it. A provider that recognises a resend under the attempt's own
    idempotency key (`can_dedupe`) is simply sent it again: its answer is the truth,
    and it keeps no second copy. Otherwise a resend follows only the provider's word
    that it never got the message — counted only `not_found_settles_after` seconds
    after the attempt started, for providers whose record shows up late — and
    unclear answers are asked again, for at most `unknown_wait`; then the message
    ends unconfirmed rather than risk reaching the patient twice. A message whose
    deadline or age passed is not resent: failed when the provider never got it,
    unconfirmed when nobody can say."""
    if lookup is Lookup.FOUND:
        return SettleDecision(Settle.RECORD, None, ())
    waited = now - started_at
    settled = lookup is Lookup.NOT_FOUND and waited.total_seconds() >= not_found_settles_after
    if settled or can_dedupe:
        late = _too_late(now, number, first_due_at, not_after, policy)
        if late is None:
            return SettleDecision(Settle.RESEND, None, ())
        if settled:
            return SettleDecision(Settle.FAIL, None, (late,))
        return _unconfirmed(number)
    if waited >= policy.unknown_wait:
        return _unconfirmed(number)
    check = next_check(now=now, started_at=started_at, number=number, policy=policy, rng=rng)
    if check.at is not None and check.at > started_at + policy.unknown_wait:
        at = started_at + policy.unknown_wait
        return SettleDecision(
            Settle.WAIT, at, (reason(Code.OUTCOME_UNKNOWN, attempt=number, at=at),)
        )
    return check


def _too_late(
    now: dt.datetime,
    attempts: int,
    first_due_at: dt.datetime,
    not_after: dt.datetime | None,
    policy: RetryPolicy,
) -> Reason | None:
    if not_after is not None and now >= not_after:
        return reason(Code.TARGET_PASSED, target=not_after)
    if now - first_due_at > policy.max_age:
        return reason(Code.RETRIES_EXHAUSTED, attempts=attempts)
    return None


def _unconfirmed(number: int) -> SettleDecision:
    return SettleDecision(
        Settle.UNCONFIRMED, None, (reason(Code.DELIVERY_UNCONFIRMED, attempt=number),)
    )
