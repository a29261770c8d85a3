"""`carebell scheduler`: plan continuously; one planner at a time is elected."""

from __future__ import annotations

import os
import signal
import socket
import threading

from django.core.management.base import BaseCommand, CommandParser

from carebell.cli import BACKGROUND_CHECKS, check_seconds
from carebell.messaging.models import PlannerLease
from carebell.planning.runner import run_forever

#: Below this the planner would start pass after pass without rest.
MIN_INTERVAL = 1.0
MAX_INTERVAL = 3600.0
MAX_SWEEP_EVERY = 7 * 86_400.0


class Command(BaseCommand):
    help = "Run the planner every --interval seconds (only one process plans at a time)."
    requires_system_checks = BACKGROUND_CHECKS

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=30.0,
            help=f"Seconds between passes (default 30; {MIN_INTERVAL:g} to {MAX_INTERVAL:g}: "
            "smaller values are refused, so the planner never spins).",
        )
        parser.add_argument(
            "--sweep-every",
            type=float,
            default=900.0,
            help="Seconds between appointment sweeps (default 900; 0 sweeps every pass).",
        )

    def handle(self, *args, interval: float, sweep_every: float, **opts):
        check_seconds("--interval", interval, MIN_INTERVAL, MAX_INTERVAL)
        check_seconds("--sweep-every", sweep_every, 0, MAX_SWEEP_EVERY)
        # An unreachable or unmigrated database stops the scheduler at once, in one line.
        PlannerLease.objects.exists()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        holder = f"{socket.gethostname()}:{os.getpid()}"
        run_forever(stop, holder=holder, interval=interval, sweep_every=sweep_every)
