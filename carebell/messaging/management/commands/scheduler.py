"""`carebell scheduler`: plan continuously; one planner at a time is elected."""

from __future__ import annotations

import os
import signal
import socket
import threading

from django.core.management.base import BaseCommand, CommandParser

from carebell.messaging.planning.runner import run_forever


class Command(BaseCommand):
    help = "Run the planner every --interval seconds (only one process plans at a time)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=30.0, help="Seconds between passes (default 30)."
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=900.0,
            help="Seconds between appointment sweeps (default 900).",
        )

    def handle(self, *args, interval: float, sweep_every: float, **opts):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        holder = f"{socket.gethostname()}:{os.getpid()}"
        run_forever(stop, holder=holder, interval=interval, sweep_every=sweep_every)
