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


def simulated_phone(stop: threading.Event) -> None:
    """The simulated phone and mailbox on CAREBELL_SIM_URL's port: it receives what
    the demo sends, reports delivery, and posts the patient's replies back."""
    from urllib.parse import urlsplit

    from django.conf import settings

    from carebell.simulator.providers import sim_token
    from carebell.simulator.server import SimConfig, start_in_thread

    port = urlsplit(settings.SIM_URL).port or 8025
    handle = start_in_thread(
        SimConfig(
            port=port, auth_token=sim_token(), inbound_url=f"{settings.BASE_URL}/hooks/sim/inbound"
        )
    )
    try:
        stop.wait()
    finally:
        handle.stop()


def planner(stop: threading.Event) -> None:
    """The planner, every few seconds so the demo reacts quickly."""
    import os

    from carebell.planning.runner import run_forever

    try:
        run_forever(stop, holder=f"demo:{os.getpid()}", interval=5.0, sweep_every=60.0)
    finally:
        _close_connection()


def dispatcher(stop: threading.Event) -> None:
    """One dispatcher worker sending what is due through the simulated phone."""
    from carebell.dispatch.dispatcher import Dispatcher

    try:
        Dispatcher(batch_size=50).run(stop, idle_seconds=1.0)
    finally:
        _close_connection()


def _close_connection() -> None:
    from django.db import connection

    connection.close()


BACKGROUND_SERVICES: list[Service] = [simulated_phone, planner, dispatcher]

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
