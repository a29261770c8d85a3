"""The pure rules of carebell.core.event_delivery: answers, the retry schedule,
Retry-After, and which addresses may be called."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carebell.core.event_delivery import (
    MAX_AGE,
    SCHEDULE,
    Answer,
    Refusal,
    Why,
    classify,
    decide,
    first_refusal,
    parse_retry_after,
    refusal_for,
)

T0 = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("status", "answer", "why"),
    [
        (200, Answer.DELIVERED, Why.ACCEPTED),
        (204, Answer.DELIVERED, Why.ACCEPTED),
        (299, Answer.DELIVERED, Why.ACCEPTED),
        (410, Answer.GONE, Why.GONE),
        (301, Answer.RETRY, Why.REDIRECT),
        (400, Answer.RETRY, Why.CLIENT_ERROR),
        (404, Answer.RETRY, Why.CLIENT_ERROR),
        (429, Answer.RETRY, Why.CLIENT_ERROR),
        (500, Answer.RETRY, Why.SERVER_ERROR),
        (503, Answer.RETRY, Why.SERVER_ERROR),
        (None, Answer.RETRY, Why.NO_ANSWER),
    ],
)
def test_it_reads_each_answer(status, answer, why):
    assert classify(status) == (answer, why)


def test_the_schedule_spans_about_three_days():
    total = sum(SCHEDULE, dt.timedelta())
    assert dt.timedelta(days=2, hours=18) < total < dt.timedelta(days=3)
    assert list(SCHEDULE) == sorted(SCHEDULE)


def test_each_wait_follows_the_schedule_within_its_jitter():
    rng = random.Random(1)
    for attempt, wait in enumerate(SCHEDULE, start=1):
        decision = decide(status_code=500, attempts=attempt, created_at=T0, now=T0, rng=rng)
        if decision.answer is Answer.GIVE_UP:
            pytest.fail(f"gave up at attempt {attempt}")
        assert wait * 0.9 <= decision.retry_at - T0 <= wait * 1.1


def test_replaying_the_schedule_gives_up_within_max_age():
    rng, now, attempts = random.Random(7), T0, 0
    while True:
        attempts += 1
        decision = decide(status_code=503, attempts=attempts, created_at=T0, now=now, rng=rng)
        if decision.answer is Answer.GIVE_UP:
            break
        now = decision.retry_at
    assert attempts == len(SCHEDULE) + 1
    assert dt.timedelta(days=2, hours=12) < now - T0 <= MAX_AGE


def test_retry_after_longer_than_the_schedule_wins():
    decision = decide(
        status_code=429, attempts=1, created_at=T0, now=T0, retry_after=600, rng=random.Random()
    )
    assert decision.retry_at == T0 + dt.timedelta(seconds=600)
    assert Why.RETRY_AFTER in decision.reasons


def test_retry_after_shorter_than_the_schedule_does_not_hurry_it():
    decision = decide(
        status_code=503, attempts=3, created_at=T0, now=T0, retry_after=1, rng=random.Random()
    )
    assert decision.retry_at - T0 >= dt.timedelta(minutes=4)
    assert Why.RETRY_AFTER not in decision.reasons


def test_a_retry_after_beyond_the_max_age_gives_up():
    decision = decide(
        status_code=503, attempts=1, created_at=T0, now=T0, retry_after=4 * 86_400,
        rng=random.Random(),
    )  # fmt: skip
    assert (decision.answer, decision.retry_at) == (Answer.GIVE_UP, None)
    assert Why.TOO_OLD in decision.reasons


@given(st.integers(1, 20), st.one_of(st.none(), st.integers(100, 599)), st.integers(0, 10**6))
def test_a_retry_is_never_in_the_past_nor_beyond_the_max_age(attempts, status, seed):
    decision = decide(
        status_code=status, attempts=attempts, created_at=T0, now=T0, rng=random.Random(seed)
    )
    if decision.retry_at is not None:
        assert T0 < decision.retry_at <= T0 + MAX_AGE
        assert decision.answer is Answer.RETRY


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("Wed, 25 Nov 2026 15:05:00 GMT", 300.0),
        ("Wed, 25 Nov 2026 14:00:00 GMT", 0.0),  # a date in the past
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
    ],
)
def test_it_reads_retry_after_in_both_forms(header, seconds):
    assert parse_retry_after(header, T0) == seconds


@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        ("127.0.0.1", Refusal.LOOPBACK),
        ("127.5.5.5", Refusal.LOOPBACK),
        ("::1", Refusal.LOOPBACK),
        ("::ffff:127.0.0.1", Refusal.LOOPBACK),
        ("10.1.2.3", Refusal.PRIVATE),
        ("172.16.0.9", Refusal.PRIVATE),
        ("192.168.1.1", Refusal.PRIVATE),
        ("fd00:ec2::254", Refusal.PRIVATE),
        ("169.254.169.254", Refusal.LINK_LOCAL),
        ("fe80::1", Refusal.LINK_LOCAL),
        ("fe80::1%eth0", Refusal.LINK_LOCAL),
        ("100.64.0.1", Refusal.NOT_PUBLIC),
        ("0.0.0.1", Refusal.PRIVATE),  # "this network"
        ("224.0.0.1", Refusal.NOT_PUBLIC),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_it_refuses_every_address_that_is_not_public(address, refusal):
    assert refusal_for(address) == refusal


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public():
    assert first_refusal(["93.184.216.34", "10.0.0.1"]) == ("10.0.0.1", Refusal.PRIVATE)
    assert first_refusal(["93.184.216.34"]) is None
