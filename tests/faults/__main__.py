"""The fault suite, long form, on its own PostgreSQL database:

    .venv/bin/python -m tests.faults --messages 5000

Recreates the database (default `carebell_faults` on 127.0.0.1:5432), plans N due
SMS, sends them through 3 real dispatcher workers (killed with SIGKILL 20 times at
random moments) to the simulated provider injecting 20 % 500s, 5 % answers lost
after it kept the message, 5 % 429 with Retry-After and 1 % permanent errors, and
prints what reached the sink against what carebell recorded. Exits 1 when a message
was lost, duplicated, recorded failed though delivered, or recorded with another id.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import psycopg

from tests.faults.harness import CAREBELL


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--messages", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--failure-rate", type=float, default=0.20, help="500s")
    parser.add_argument("--timeout-rate", type=float, default=0.05, help="kept, answer lost")
    parser.add_argument("--throttle-rate", type=float, default=0.05, help="429, Retry-After")
    parser.add_argument("--error-rate", type=float, default=0.01, help="permanent errors")
    parser.add_argument("--database", default="carebell_faults")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    return parser.parse_args()


def fresh_database(server: str, name: str) -> str:
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{server}/{name}"
    os.environ.update(
        {
            "CAREBELL_DATABASE_URL": url,
            # DEBUG off: Django would keep every query of every worker in memory.
            "CAREBELL_DEBUG": "0",
            "CAREBELL_SECRET_KEY": os.environ.get("CAREBELL_SECRET_KEY", "faults-" + "x" * 50),
            "DJANGO_SETTINGS_MODULE": "carebell.settings",
        }
    )
    subprocess.run([CAREBELL, "migrate", "-v", "0"], env=os.environ, check=True)
    return url


def main() -> int:
    args = options()
    fresh_database(args.server, args.database)
    import django

    django.setup()
    from tests import factories
    from tests.faults.suite import Run, run

    chosen = Run(
        messages=args.messages,
        workers=args.workers,
        kills=args.kills,
        failure_rate=args.failure_rate,
        timeout_rate=args.timeout_rate,
        throttle_rate=args.throttle_rate,
        error_rate=args.error_rate,
    )
    site = factories.make_site(factories.make_org(name="Fault Suite", slug="faults"))
    tally, kills, seconds = run(site, chosen)
    print(f"workers                 {chosen.workers}, killed {kills} times, {seconds:.0f} s")
    print("\n".join(tally.lines()))
    bad = tally.lost + tally.duplicated + tally.failed_but_delivered + tally.wrong_sid
    return (
        1 if bad or sum(tally.statuses.get(s, 0) for s in ("scheduled", "queued", "sending")) else 0
    )


if __name__ == "__main__":
    sys.exit(main())
