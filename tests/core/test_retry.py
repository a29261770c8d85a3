"""Retrying transient failures: backoff with jitter, Retry-After, and when to give up."""

from __future__ import annotations

import datetime as dt
import random

from carebell.core.reasons import Code
from carebell.core.retry import (
    Lookup,
    RetryPolicy,
    Settle,
    backoff_seconds,
    decide_retry,
    decide_unsettled,
    next_check,
)

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


# --- attempts whose outcome is unknown ------------------------------------------------


def settle(lookup: Lookup, **overrides):
    args = {
        "now": NOW, "lookup": lookup, "started_at": NOW - dt.timedelta(seconds=40),
        "number": 2, "can_dedupe": False, "not_found_settles_after": 300.0,
        "first_due_at": NOW - dt.timedelta(minutes=5), "not_after": None, "policy": POLICY,
        "rng": random.Random(7), **overrides,
    }  # fmt: skip
    return decide_unsettled(**args)


def test_what_the_provider_has_is_recorded():
    assert settle(Lookup.FOUND).action is Settle.RECORD


def test_a_provider_that_recognises_the_key_is_sent_the_same_attempt_again():
    for lookup in (Lookup.NOT_FOUND, Lookup.CANNOT_SAY):
        assert settle(lookup, can_dedupe=True).action is Settle.RESEND


def test_without_idempotency_it_resends_only_once_the_provider_says_it_never_got_it():
    assert settle(Lookup.NOT_FOUND, not_found_settles_after=0).action is Settle.RESEND
    early = settle(Lookup.NOT_FOUND)  # 40 s in: the record may not show yet
    assert early.action is Settle.WAIT and early.reasons[0].code is Code.OUTCOME_UNKNOWN
    late = settle(Lookup.NOT_FOUND, started_at=NOW - dt.timedelta(seconds=301))
    assert late.action is Settle.RESEND


def test_an_unclear_answer_is_asked_again_then_ends_unconfirmed_without_a_resend():
    waiting = settle(Lookup.CANNOT_SAY)
    assert waiting.action is Settle.WAIT and NOW < waiting.at <= NOW + dt.timedelta(seconds=40)
    last = settle(Lookup.CANNOT_SAY, started_at=NOW - dt.timedelta(minutes=59, seconds=50))
    assert last.at == NOW + dt.timedelta(seconds=10)  # not past the hour's wait
    over = settle(Lookup.CANNOT_SAY, started_at=NOW - POLICY.unknown_wait)
    assert over.action is Settle.UNCONFIRMED
    assert over.reasons[0].code is Code.DELIVERY_UNCONFIRMED


def test_a_message_past_its_deadline_is_not_resent():
    past = {"not_after": NOW - dt.timedelta(seconds=1)}
    never_got = settle(Lookup.NOT_FOUND, not_found_settles_after=0, **past)
    assert never_got.action is Settle.FAIL and never_got.reasons[0].code is Code.TARGET_PASSED
    assert settle(Lookup.CANNOT_SAY, can_dedupe=True, **past).action is Settle.UNCONFIRMED


def test_looks_at_an_unknown_attempt_back_off_with_the_time_waited():
    first = next_check(now=NOW, started_at=NOW, number=1, policy=POLICY, rng=random.Random(1))
    assert NOW + dt.timedelta(seconds=15) <= first.at <= NOW + dt.timedelta(seconds=30)
    later = next_check(
        now=NOW,
        started_at=NOW - dt.timedelta(hours=5),
        number=1,
        policy=POLICY,
        rng=random.Random(1),
    )
    assert NOW + dt.timedelta(minutes=30) <= later.at <= NOW + dt.timedelta(hours=1)
