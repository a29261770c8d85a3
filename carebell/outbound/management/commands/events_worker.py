"""`carebell events-worker`: deliver outbound events to the endpoints, until SIGTERM
(or what is due now, with --once). A process of its own beside `carebell worker`,
so endpoints never slow the patients' messages."""

from __future__ import annotations

import logging
import os
import signal
import threading

from django.core.management.base import BaseCommand, CommandParser

from carebell.cli import BACKGROUND_CHECKS, check_count, check_seconds
from carebell.outbound.delivery import PER_ENDPOINT, TIMEOUT_SECONDS, EventDeliverer, lease_for
from carebell.outbound.models import EventDelivery

log = logging.getLogger("carebell.events_worker")

#: Events can wait a moment; a patient's reminder goes first when CPU is short.
NICE = 10


class Command(BaseCommand):
    help = "Deliver outbound events (signed webhooks) to the sites' endpoints."
    requires_system_checks = BACKGROUND_CHECKS

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--per-endpoint",
            type=int,
            default=PER_ENDPOINT,
            help=f"Requests in flight to one endpoint at most (default {PER_ENDPOINT}).",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            default=TIMEOUT_SECONDS,
            help=f"Seconds to wait for an endpoint's answer (default {TIMEOUT_SECONDS:g}; "
            "1 to 60).",
        )
        parser.add_argument(
            "--idle", type=float, default=0.5, help="Seconds to sleep when nothing is due."
        )
        parser.add_argument(
            "--nice",
            type=int,
            default=NICE,
            help=f"Lower this process's CPU priority by this much (default {NICE}; 0 to 19): "
            "on a busy machine the patients' messages get the CPU first.",
        )
        parser.add_argument("--once", action="store_true", help="Deliver what is due, then exit.")

    def handle(self, *args, per_endpoint: int, timeout: float, idle: float, once: bool, **opts):
        check_count("--per-endpoint", per_endpoint)
        check_seconds("--timeout", timeout, 1.0, 60.0)
        check_seconds("--idle", idle, 0.05, 3600.0)
        os.nice(check_count("--nice", opts["nice"], 0, 19))
        EventDelivery.objects.exists()  # an unreachable or unmigrated database: one line
        lease = lease_for(timeout)
        deliverer = EventDeliverer(per_endpoint=per_endpoint, lease=lease, timeout_seconds=timeout)
        if once:
            batches = 0
            try:
                while deliverer.process_batch():
                    batches += 1
            finally:
                deliverer.close()
            self.stdout.write(f"delivered what was due in {batches} batch(es)")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        log.info("events_worker.started", extra={"ids": {"pid": os.getpid()}})
        deliverer.run(stop, idle_seconds=idle)
