"""One dispatcher worker process for the fault suite: the real `Dispatcher`, run as
`carebell worker` runs it, with a retry policy and a provider timeout short enough
for 500s, 429s and lost answers to play out in seconds rather than hours.

    python -m tests.faults.worker --batch-size 50 --lease 3 --timeout 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import threading


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.faults.worker")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--lease", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=1.0, help="provider timeout, seconds")
    parser.add_argument("--idle", type=float, default=0.2)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    import django

    django.setup()
    from carebell.core.retry import RetryPolicy
    from carebell.dispatch.dispatcher import Dispatcher

    policy = RetryPolicy(
        base_seconds=0.5,
        cap_seconds=4.0,
        max_attempts=12,
        check_seconds=1.0,
        unknown_wait=dt.timedelta(minutes=2),
    )
    dispatcher = Dispatcher(
        batch_size=args.batch_size,
        lease=dt.timedelta(seconds=args.lease),
        retry_policy=policy,
        timeout_seconds=args.timeout,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    dispatcher.run(stop, idle_seconds=args.idle)


if __name__ == "__main__":
    main()
