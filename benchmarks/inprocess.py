"""Requests answered in this process through Django's handler (no server, no
network), for the benchmarks' `--in-process` modes: CPU per request of this process
(time.process_time) and of the PostgreSQL backend serving it (/proc), and SQL
statements per request, figures a shared machine does not blur."""

from __future__ import annotations

import cProfile
import os
import pstats
import time
from collections.abc import Callable

from procstat import cpu_seconds


def backend_pid() -> int | None:
    """The PostgreSQL process serving this one's connection (None on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def per_request(
    kinds: dict[str, tuple[str, Callable]],
    call: Callable,
    requests: int,
    profile: str | None = None,
    width: int = 34,
) -> None:
    """For each kind (name → (label, make)), `call(make)` `requests` times after 20
    to warm up (imports, the connection, caches), and print its figures; for the kind
    named `profile`, its statements and a cProfile of 100 more (PROFILE_SORT and
    PROFILE_ROWS change the listing; PROFILE_CALLERS, a regex of a function's name,
    lists its callers; PROFILE_SQL, how much of each statement is shown)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    print(f"{'request':{width}} {'CPU ms':>7} {'queries':>8} {'PG ms':>6}   HTTP")
    for kind, (label, make) in kinds.items():
        for _ in range(20):
            call(make)
        backend = backend_pid()
        codes: dict[int, int] = {}
        with CaptureQueriesContext(connection) as queries:
            began = time.process_time()
            server_began = cpu_seconds(backend) if backend else 0.0
            for _ in range(requests):
                status = call(make).status_code
                codes[status] = codes.get(status, 0) + 1
            spent = time.process_time() - began
            server = (cpu_seconds(backend) - server_began) if backend else 0.0
        print(
            f"{label:{width}} {spent * 1000 / requests:7.3f} {len(queries) / requests:8.1f} "
            f"{server * 1000 / requests:6.2f}   "
            f"{','.join(f'{c}×{n}' for c, n in sorted(codes.items()))}"
        )
        if profile == kind:
            profiler = cProfile.Profile(time.process_time)  # CPU, not waits
            with CaptureQueriesContext(connection) as one:
                profiler.runcall(call, make)
            for query in one.captured_queries:
                print("   ", query["sql"][: int(os.environ.get("PROFILE_SQL", 400))])
            for _ in range(100):
                profiler.runcall(call, make)
            if os.environ.get("PROFILE_DUMP"):  # a file for pstats, snakeviz and the like
                profiler.dump_stats(os.environ["PROFILE_DUMP"])
            stats = pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
            stats.print_stats(int(os.environ.get("PROFILE_ROWS", "70")))
            if os.environ.get("PROFILE_CALLERS"):  # who calls a function: a regex of its name
                stats.print_callers(os.environ["PROFILE_CALLERS"])
