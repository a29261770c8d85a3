"""`carebell worker`: send what is due, until SIGTERM (or once, with --once)."""

from __future__ import annotations

import datetime as dt
import signal
import threading

from django.core.management.base import BaseCommand, CommandParser

from carebell.messaging.dispatcher import Dispatcher


class Command(BaseCommand):
    help = "Run a dispatcher worker: claim due messages in batches and send them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=64,
            help="Provider requests in flight at once (default 64).",
        )
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--once", action="store_true", help="Send everything that is due now, then exit."
        )
        parser.add_argument(
            "--idle", type=float, default=1.0, help="Seconds to sleep when nothing is due."
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=120.0,
            help="Seconds a claimed batch stays this worker's; a crashed worker's rows "
            "come back after it (default 120).",
        )

    def handle(self, *args, concurrency: int, batch_size: int, once: bool, idle: float, **opts):
        lease = opts.get("lease", 120.0)
        if concurrency < 1 or batch_size < 1 or lease <= 0:
            self.stderr.write("--concurrency, --batch-size and --lease must be positive")
            raise SystemExit(2)
        dispatcher = Dispatcher(
            batch_size=batch_size, concurrency=concurrency, lease=dt.timedelta(seconds=lease)
        )
        if once:
            batches = 0
            try:
                while dispatcher.process_batch():
                    batches += 1
            finally:
                dispatcher.close()
            self.stdout.write(f"sent what was due in {batches} batch(es)")
            return
        stop = threading.Event()
        # SIGTERM finishes the batch in hand, then exits: nothing is left half-recorded.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        dispatcher.run(stop, idle_seconds=idle)
