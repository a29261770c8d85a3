"""When to try a failed send again (pure).

Transient provider failures are retried with jittered exponential backoff, never
sooner than the provider's Retry-After, and given up after a maximum number of
attempts or a maximum age — or once the event the message is about has passed.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from carebell.core.reasons import Code, Reason, reason


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 6
    max_age: dt.timedelta = dt.timedelta(hours=24)


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
