"""`carebell events-worker`: --once delivers what is due; bad options are one line."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from carebell import events
from carebell.outbound.models import EventDelivery

pytestmark = pytest.mark.django_db


def test_once_delivers_what_is_due_and_exits(site, endpoint, receiver):
    events.emit(site, "message.failed", {"message": {"id": 1}}, timezone.now())
    out = io.StringIO()
    call_command("events_worker", "--once", "--nice", "0", stdout=out)
    assert EventDelivery.objects.get().status == "delivered"
    assert len(receiver.received) == 1
    assert "delivered what was due" in out.getvalue()


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--per-endpoint", "0"], "--per-endpoint must be at least 1"),
        (["--timeout", "0.5"], "--timeout must be a number of seconds from 1 to 60"),
        (["--idle", "0"], "--idle must be"),
        (["--nice", "20"], "--nice must be from 0 to 19"),
    ],
)
def test_bad_options_are_refused_in_one_line(option, words):
    with pytest.raises(CommandError, match=words):
        call_command("events_worker", "--once", *option)
