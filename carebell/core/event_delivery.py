"""Outbound events to the source systems' endpoints (SPEC §9): what an answer
means, when to try again, and which addresses may never be called (pure).

An endpoint's answer decides a delivery: any 2xx delivers it; 410 Gone says the
endpoint was removed for good, so it is switched off; anything else — another 4xx
or 5xx, a redirect (never followed: it could lead anywhere), a timeout, a refused
connection — is tried again on a schedule that grows from seconds to a day and
gives up after about three days, never sooner than the endpoint's Retry-After.

Addresses: an endpoint is a URL a staff member typed, which the worker then calls
from inside the practice's network. Unless the operator allows it, every address a
name resolves to must be a public one — not loopback, private, link-local (where
cloud metadata services answer), shared, multicast or reserved — or a crafted URL
would make carebell a way in (server-side request forgery).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import ipaddress
import random
from dataclasses import dataclass
from enum import StrEnum

#: The waits after each failed attempt (the first attempt goes at once). They add up
#: to about 2.9 days; with jitter and Retry-After the last attempt lands near three.
SCHEDULE: tuple[dt.timedelta, ...] = tuple(
    dt.timedelta(seconds=s)
    for s in (5, 60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600, 12 * 3600, 24 * 3600, 24 * 3600)
)
#: No attempt starts later than this after the event.
MAX_AGE = dt.timedelta(days=3, hours=6)
#: Each wait is drawn within ±JITTER of its nominal value, so deliveries that failed
#: together (an endpoint down for an hour) do not all come back in the same second.
JITTER = 0.1


class Answer(StrEnum):
    """What one attempt came to."""

    DELIVERED = "delivered"  # 2xx
    GONE = "gone"  # 410: the endpoint is switched off
    RETRY = "retry"  # anything else
    GIVE_UP = "give_up"  # a retry would fall after MAX_AGE, or the schedule is spent


class Why(StrEnum):
    """The reasons carebell gives in an endpoint's delivery log."""

    ACCEPTED = "accepted"
    GONE = "endpoint_gone"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    REDIRECT = "redirect_not_followed"
    NO_ANSWER = "no_answer"  # timeout, refused or dropped connection
    RETRY_AFTER = "retry_after_honoured"
    SCHEDULE_SPENT = "schedule_spent"
    TOO_OLD = "too_old"


@dataclass(frozen=True, slots=True)
class Decision:
    answer: Answer
    retry_at: dt.datetime | None
    reasons: tuple[Why, ...]


def classify(status_code: int | None) -> tuple[Answer, Why]:
    """The meaning of an endpoint's HTTP status (None: no answer at all)."""
    if status_code is None:
        return Answer.RETRY, Why.NO_ANSWER
    if 200 <= status_code < 300:
        return Answer.DELIVERED, Why.ACCEPTED
    if status_code == 410:
        return Answer.GONE, Why.GONE
    if 300 <= status_code < 400:
        return Answer.RETRY, Why.REDIRECT
    if 400 <= status_code < 500:
        return Answer.RETRY, Why.CLIENT_ERROR
    return Answer.RETRY, Why.SERVER_ERROR


def decide(
    *,
    status_code: int | None,
    attempts: int,
    created_at: dt.datetime,
    now: dt.datetime,
    retry_after: float | None = None,
    rng: random.Random,
    schedule: tuple[dt.timedelta, ...] = SCHEDULE,
    max_age: dt.timedelta = MAX_AGE,
) -> Decision:
    """What becomes of a delivery after its `attempts`-th attempt (1-based) answered
    `status_code` at `now`, for an event made at `created_at`. A retry comes after
    the schedule's wait for that attempt, or after `retry_after` seconds when the
    endpoint asked for longer; none once the schedule is spent or the retry would
    start after `max_age`."""
    answer, why = classify(status_code)
    if answer is not Answer.RETRY:
        return Decision(answer, None, (why,))
    if attempts > len(schedule):
        return Decision(Answer.GIVE_UP, None, (why, Why.SCHEDULE_SPENT))
    wait = schedule[attempts - 1].total_seconds() * rng.uniform(1 - JITTER, 1 + JITTER)
    reasons: tuple[Why, ...] = (why,)
    if retry_after is not None and retry_after > wait:
        wait, reasons = retry_after, (why, Why.RETRY_AFTER)
    retry_at = now + dt.timedelta(seconds=wait)
    if retry_at - created_at > max_age:
        return Decision(Answer.GIVE_UP, None, (*reasons, Why.TOO_OLD))
    return Decision(Answer.RETRY, retry_at, reasons)


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 §10.2.3: delay-seconds or
    an HTTP date), or None when absent or unreadable. A date in the past is 0."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


class Refusal(StrEnum):
    """Why an address may not be called."""

    LOOPBACK = "loopback"
    PRIVATE = "private"
    LINK_LOCAL = "link_local"
    NOT_PUBLIC = "not_public"  # shared, multicast, reserved, unspecified …


def refusal_for(address: str) -> Refusal | None:
    """Why `address` (an IPv4 or IPv6 literal) may not be called, or None for a
    public one. An IPv4 address written as IPv6 (::ffff:127.0.0.1) is judged as the
    IPv4 address it is."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return Refusal.LOOPBACK
    if ip.is_link_local:
        return Refusal.LINK_LOCAL
    if ip.is_private:
        return Refusal.PRIVATE
    if not ip.is_global or ip.is_multicast:
        return Refusal.NOT_PUBLIC
    return None


def first_refusal(addresses: list[str]) -> tuple[str, Refusal] | None:
    """The first of `addresses` that may not be called, with why: a name is called
    only if every address it resolves to is public (the connection may use any)."""
    for address in addresses:
        refusal = refusal_for(address)
        if refusal is not None:
            return address, refusal
    return None
