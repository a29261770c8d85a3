"""Background services that `carebell demo` runs beside the web server.

A service is a callable taking a `threading.Event`; it runs in its own daemon thread
and must return soon after the event is set. `carebell demo` starts every entry of
BACKGROUND_SERVICES before it serves and stops them all on exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

Service = Callable[[threading.Event], None]

BACKGROUND_SERVICES: list[Service] = []

logger = logging.getLogger(__name__)


def start_background_services(
    stop_event: threading.Event, services: Iterable[Service] | None = None
) -> list[threading.Thread]:
    """Start each service (by default BACKGROUND_SERVICES) in a daemon thread."""
    threads = []
    for service in BACKGROUND_SERVICES if services is None else services:
        name = getattr(service, "__name__", type(service).__name__)
        thread = threading.Thread(
            target=_run, args=(service, stop_event), name=f"carebell-{name}", daemon=True
        )
        thread.start()
        threads.append(thread)
    return threads


def stop_background_services(
    stop_event: threading.Event, threads: list[threading.Thread], timeout: float = 10.0
) -> list[str]:
    """Set the stop event and wait for the threads; returns the names still running."""
    stop_event.set()
    for thread in threads:
        thread.join(timeout)
    return [t.name for t in threads if t.is_alive()]


def _run(service: Service, stop_event: threading.Event) -> None:
    try:
        service(stop_event)
    except Exception:
        logger.exception("background service stopped with an error", extra={"service": service})
