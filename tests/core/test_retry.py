"""Retrying transient failures: backoff with jitter, Retry-After, and when to give up."""

from __future__ import annotations

import datetime as dt
import random

from carebell.core.reasons import Code
from carebell.core.retry import RetryPolicy, backoff_seconds, decide_retry

NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
POLICY = RetryPolicy(base_seconds=30, cap_seconds=3600, max_attempts=6)


def decide(**overrides):
    args = {
        "now": NOW, "attempts": 1, "first_due_at": NOW, "retry_after": None,
        "not_after": None, "policy": POLICY, "rng": random.Random(7), **overrides,
    }  # fmt: skip
    return decide_retry(**args)


def test_backoff_grows_and_stays_under_the_cap():
    rng = random.Random(1)
    ceilings = [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delay = backoff_seconds(attempt, POLICY, rng)
        assert ceiling / 2 <= delay <= ceiling


def test_a_transient_failure_is_retried_later():
    decision = decide()
    assert not decision.gives_up
    assert NOW + dt.timedelta(seconds=15) <= decision.retry_at <= NOW + dt.timedelta(seconds=30)
    assert decision.reasons[0].code is Code.RETRY_SCHEDULED


def test_retry_after_is_honoured_when_longer_than_the_backoff():
    decision = decide(retry_after=600)
    assert decision.retry_at == NOW + dt.timedelta(seconds=600)


def test_it_gives_up_after_the_maximum_attempts():
    decision = decide(attempts=6)
    assert decision.gives_up and decision.reasons[0].code is Code.RETRIES_EXHAUSTED


def test_it_gives_up_when_the_message_is_too_old():
    decision = decide(first_due_at=NOW - dt.timedelta(hours=24))
    assert decision.gives_up and decision.reasons[0].code is Code.RETRIES_EXHAUSTED


def test_it_never_retries_at_or_after_the_deadline():
    decision = decide(not_after=NOW + dt.timedelta(seconds=10))
    assert decision.gives_up and decision.reasons[0].code is Code.TARGET_PASSED
