"""The events worker as a background service of `carebell demo` (see
carebell.demo.services): a thread with its own database connection beside the
dispatcher's, delivering to the endpoints staff add in the demo."""

from __future__ import annotations

import threading


def event_deliverer(stop: threading.Event) -> None:
    from django.db import connection

    from carebell.outbound.delivery import EventDeliverer

    try:
        EventDeliverer().run(stop, idle_seconds=1.0)
    finally:
        connection.close()
