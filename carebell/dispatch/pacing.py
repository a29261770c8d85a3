"""Keeps each SMS sender under its messages-per-second across every worker.

Each sender has one row holding its next free slot. A worker reserves slots for
what it is about to send with one short locked update; what does not fit in the
next second is put back with its due time at its slot, for whichever worker is
free then. Senders without a limit (email, the simulator) are not paced.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction

from carebell.dispatch import rendering
from carebell.dispatch.provider_set import ProviderSet
from carebell.messaging.models import OutboxMessage, SenderPace

#: How far ahead one batch may reserve slots for itself.
HORIZON = dt.timedelta(seconds=1)


def admit(
    messages: list[OutboxMessage], now: dt.datetime, providers: ProviderSet
) -> tuple[list[OutboxMessage], dict[int, dt.datetime]]:
    """Split `messages` into those that may go now and those to come back later
    (message id → the time of its slot)."""
    by_sender: dict[tuple[str, float], list[OutboxMessage]] = defaultdict(list)
    admitted: list[OutboxMessage] = []
    rates: dict[tuple[str, int], float | None] = {}
    for message in messages:
        key = (message.channel, message.site_id)
        if key not in rates:
            provider = providers.for_site(message.channel, message.site)
            rates[key] = provider.limits.messages_per_second
        rate = rates[key]
        if not rate:
            admitted.append(message)
        else:
            by_sender[(rendering.sender_for(message), rate)].append(message)
    later: dict[int, dt.datetime] = {}
    for (sender, rate), queue in by_sender.items():
        first_free, fits = _reserve(sender, rate, len(queue), now)
        admitted.extend(queue[:fits])
        step = dt.timedelta(seconds=1 / rate)
        for i, message in enumerate(queue[fits:]):
            later[message.id] = first_free + step * (fits + i)
    return admitted, later


def _reserve(sender: str, rate: float, wanted: int, now: dt.datetime) -> tuple[dt.datetime, int]:
    """Reserve up to `wanted` slots within HORIZON; returns (first slot, how many)."""
    step = dt.timedelta(seconds=1 / rate)
    with transaction.atomic():
        pace, _ = SenderPace.objects.select_for_update().get_or_create(
            sender=sender, defaults={"next_free_at": now}
        )
        first = max(pace.next_free_at, now)
        room = int((now + HORIZON - first) / step)
        fits = max(0, min(wanted, room))
        pace.next_free_at = first + step * fits
        pace.save(update_fields=["next_free_at"])
    return first, fits
