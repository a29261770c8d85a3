"""`carebell worker`: send what is due, until SIGTERM (or once, with --once)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading

from django.core.management.base import BaseCommand, CommandParser

from carebell.cli import BACKGROUND_CHECKS, check_count, check_seconds
from carebell.dispatch.dispatcher import Dispatcher
from carebell.messaging.models import OutboxMessage
from carebell.sends import group as group_sends

log = logging.getLogger("carebell.worker")

#: Below this an idle worker would query the database in a tight loop.
MIN_IDLE = 0.1
MAX_IDLE = 3600.0
#: A lease must outlast a batch's sending, or another worker takes the rows back
#: while they are still going out.
MIN_LEASE = 1.0
MAX_LEASE = 86_400.0


class Command(BaseCommand):
    help = "Run a dispatcher worker: claim due messages in batches and send them."
    requires_system_checks = BACKGROUND_CHECKS

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=64,
            help="Provider requests in flight at once (default 64).",
        )
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Messages per batch (default 500)."
        )
        parser.add_argument(
            "--once", action="store_true", help="Send everything that is due now, then exit."
        )
        parser.add_argument(
            "--idle",
            type=float,
            default=1.0,
            help=f"Seconds to sleep when nothing is due (default 1; {MIN_IDLE:g} to "
            f"{MAX_IDLE:g}: smaller values are refused, so an idle worker never spins).",
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=120.0,
            help="Seconds a claimed batch stays this worker's; a crashed worker's rows "
            f"come back after it (default 120; {MIN_LEASE:g} to {MAX_LEASE:g}).",
        )

    def handle(self, *args, concurrency: int, batch_size: int, once: bool, idle: float, **opts):
        check_count("--concurrency", concurrency)
        check_count("--batch-size", batch_size)
        check_seconds("--idle", idle, MIN_IDLE, MAX_IDLE)
        lease = check_seconds("--lease", opts["lease"], MIN_LEASE, MAX_LEASE)
        # An unreachable or unmigrated database stops the worker at once, in one
        # line; an outage later is logged and retried batch after batch.
        OutboxMessage.objects.exists()
        dispatcher = Dispatcher(
            batch_size=batch_size, concurrency=concurrency, lease=dt.timedelta(seconds=lease)
        )
        if once:
            batches = 0
            while group_sends.process_one():  # group messages started but unwritten
                pass
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
        # Said once the handlers are in place, so a supervisor (or a test) knows that a
        # SIGTERM from now on is a clean stop.
        log.info("worker.started", extra={"ids": {"pid": os.getpid()}})
        writer = threading.Thread(target=_write_group_sends, args=(stop, idle), daemon=True)
        writer.start()
        dispatcher.run(stop, idle_seconds=idle)
        writer.join()


def _write_group_sends(stop: threading.Event, idle: float) -> None:
    """Beside the dispatcher: take up group messages started but left unwritten (their
    page's background step died with its process), so none stays half-queued."""
    from django.db import connection

    try:
        while not stop.is_set():
            try:
                busy = group_sends.process_one()
            except Exception:
                log.exception("worker.group_send_failed")
                busy = False
            if not busy:
                stop.wait(idle)
    finally:
        connection.close()
