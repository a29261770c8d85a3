"""The one way in for changes to fills (SPEC §5.4)."""

from __future__ import annotations

import datetime as dt

from carebell import outbox
from carebell.core.reasons import Code, reason
from carebell.core.vocab import EntityType, Kind


def fill_changed(fill, *, now: dt.datetime) -> int:
    """A fill moved on: once picked up or returned to stock, its pending ready notices
    and pickup reminders stop, in the transaction of the change (SPEC §5.4). The next
    planner pass plans what now applies (a pickup confirmation, a review request)."""
    stopped = {"picked_up": Code.PICKED_UP, "returned_to_stock": Code.RETURNED_TO_STOCK}
    code = stopped.get(fill.step)
    if code is None:
        return 0
    return outbox.cancel_pending_for(
        EntityType.FILL,
        [fill.id],
        [reason(code)],
        now,
        kinds=[Kind.RX_READY, Kind.RX_PICKUP_REMINDER],
    )
