"""What a combined siblings' message says: every child, each with their own time."""

from __future__ import annotations

import datetime as dt

import pytest

from carebell.core.vocab import Channel, Kind
from carebell.dispatch.rendering import render_batch
from carebell.messaging.models import OutboxMessage
from tests.dispatch.test_dispatcher import plan
from tests.messaging.engine_setup import NOW, enable, family

pytestmark = pytest.mark.django_db

# Saturday 28 November 2026 in New York (EST): 09:00 and 10:30.
AT_NINE = dt.datetime(2026, 11, 28, 14, 0, tzinfo=dt.UTC)
AT_HALF_PAST_TEN = dt.datetime(2026, 11, 28, 15, 30, tzinfo=dt.UTC)

EXPECTED = {
    ("en", Channel.SMS): ("Kid0 9:00 AM", "Kid1 10:30 AM"),
    ("en", Channel.EMAIL): ("Kid0 at 9:00 AM", "Kid1 at 10:30 AM"),
    ("en", Channel.CALL): (
        "Kid0 at nine o'clock in the morning",
        "Kid1 at ten thirty in the morning",
    ),
    ("es", Channel.SMS): ("Kid0 9:00 am", "Kid1 10:30 am"),
    ("es", Channel.EMAIL): ("Kid0 a las 9:00 am", "Kid1 a las 10:30 am"),
    ("es", Channel.CALL): (
        "Kid0 a las nueve de la mañana",
        "Kid1 a las diez y media de la mañana",
    ),
}


@pytest.fixture
def combined(site):
    """Two siblings sharing a parent's phone, seen the same Saturday."""
    kids = family(site, children=2)
    starts = (AT_NINE, AT_HALF_PAST_TEN)
    for (_child, _parent, appointment), start in zip(kids, starts, strict=True):
        appointment.starts_at = start
        appointment.save()
    return kids


@pytest.mark.parametrize("kind", [Kind.APPT_CONFIRMATION, Kind.APPT_REMINDER])
@pytest.mark.parametrize(("language", "channel"), list(EXPECTED), ids=lambda v: str(v))
def test_a_combined_message_names_both_children_with_their_own_times(
    site, combined, kind, language, channel
):
    enable(site, kind, [{"days": 1}])
    plan(site, now=NOW)
    message = OutboxMessage.objects.get()
    assert len(message.entity_ids) == 2
    # The same stored message, written for each channel and language.
    message.channel, message.language, message.body = channel, language, ""
    render_batch([message])
    for part in EXPECTED[(language, channel)]:
        assert part in message.body, message.body
    if channel is Channel.EMAIL:
        assert all(part in message.html_body for part in EXPECTED[(language, channel)])
    if channel is Channel.SMS:
        assert message.segments == 1, message.body
