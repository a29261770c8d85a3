"""Outbound events on PostgreSQL: delivery rate to a loopback receiver, and what an
events worker running beside the dispatcher costs the patients' messages.

    .venv/bin/python benchmarks/bench_events.py [--events 30000] [--messages 20000]
        [--database carebell_bench_events] [--events-only | --profile N]

Uses a database of its own (default `carebell_bench_events`, created and migrated
if missing) and the dispatch benchmark's seeding. Three runs, one after another:

1. events alone: N OutboundEvent rows, one endpoint of the bench site at an aiohttp
   receiver in its own process answering 204; one `carebell events-worker --nice 0`. Rate in
   steady state (from 5 % delivered to the last), and the worker's CPU per event.
2. dispatch alone: M due SMS to the loopback sim, `carebell worker` ×2 (as
   bench_dispatch.py), messages/s in steady state.
3. dispatch with events: the same, while an events worker (at its default
   priority, nice 10) delivers a backlog of events that outlasts the dispatch run.
   It gives way while patients' messages are due: the events rate during the run,
   the events worker's CPU as a share of the dispatchers', and its rate once the
   patients' messages are out are printed too.

`--profile N` instead delivers N events from this process and prints its CPU ms,
queries and commits per event, and its PostgreSQL backend's CPU per event: figures
that hold on a shared machine, where the rates above do not.

Prints the figures; it asserts nothing. The machine is shared: trust ratios.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dispatch import CAREBELL, ROOT, done_count, free_port, prepare_database, seed, start_sim
from procstat import CpuMeter, cpu_seconds

ENDPOINT_SCRIPT = """
from carebell.outbound import endpoints
from carebell.outbound.models import WebhookEndpoint
from carebell.sites.models import Site
WebhookEndpoint.objects.all().delete()
site = Site.objects.get(name="Bench Clinic")
endpoints.create_endpoint(site, url="{url}", event_types=["appointment.confirmed"], by=None)
"""
EVENTS = """
INSERT INTO messaging_outboundevent (site_id, event_type, payload, created_at, attempts)
SELECT %(site)s, 'appointment.confirmed',
       jsonb_build_object('appointment', jsonb_build_object('id', g, 'source', 'bench',
                          'external_id', 'A' || g), 'patient', jsonb_build_object('id', g)),
       now(), 0
FROM generate_series(1, %(n)s) g
"""
CLEAR = """TRUNCATE outbound_deliveryattemptlog, outbound_eventdelivery,
    messaging_outboundevent CASCADE"""


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-endpoint", type=int, default=64)
    parser.add_argument("--database", default="carebell_bench_events")
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--events-only", action="store_true", help="Only the first run.")
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        help="Instead: deliver N events in this process and print CPU ms, queries and "
        "commits per event (this process, and its PostgreSQL backend's CPU).",
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the receiver's port
    return parser.parse_args()


def serve(port: int) -> None:
    """The integrator's receiver: 204 to every POST, as fast as aiohttp goes."""
    from aiohttp import web

    async def receive(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hooks", receive)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_receiver() -> tuple[subprocess.Popen, str]:
    port = free_port()
    # The receiver stands for the integrator's own machine: at the lowest priority,
    # so that on this shared box it takes CPU from carebell's processes only last.
    receiver = subprocess.Popen(
        ["nice", "-n", "19", sys.executable, __file__, "--serve", str(port)]
    )
    time.sleep(1.5)
    return receiver, f"http://127.0.0.1:{port}/hooks"


def delivered(conn) -> int:
    query = "SELECT count(*) FROM outbound_eventdelivery WHERE status = 'delivered'"
    return conn.execute(query).fetchone()[0]


def handed_on(conn) -> int:
    query = "SELECT count(*) FROM messaging_outboundevent WHERE delivered_at IS NULL"
    return conn.execute(query).fetchone()[0]


def seed_events(conn, site: int, n: int) -> None:
    conn.execute(CLEAR)
    conn.execute(EVENTS, {"site": site, "n": n})


def steady_rate(
    count, total: int, limit: float = 600, at_start=lambda: None
) -> tuple[float, int, float, float]:
    """(rate per s, units measured, t0, t1) from 5 % of `total` to all of it;
    `at_start()` is called at t0."""
    started = time.monotonic()
    while (first := count()) < total * 0.05:
        time.sleep(0.05)
        if time.monotonic() - started > limit:
            raise RuntimeError("nothing moved")
    t0 = time.monotonic()
    at_start()
    while count() < total:
        time.sleep(0.2)
        if time.monotonic() - started > limit:
            raise RuntimeError(f"not done after {limit:.0f} s")
    t1 = time.monotonic()
    return (total - first) / (t1 - t0), total - first, t0, t1


def events_worker(env, args, nice: int = 10) -> subprocess.Popen:
    command = [CAREBELL, "events-worker", "--per-endpoint", str(args.per_endpoint)]
    command += ["--idle", "0.2", "--nice", str(nice)]
    return subprocess.Popen(command, env=env, cwd=ROOT)


def stop(*processes: subprocess.Popen) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


def run_events_alone(url, env, args, site) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        seed_events(conn, site, args.events)
        worker = events_worker(env, args, nice=0)  # alone: its full speed
        meter = CpuMeter()
        try:
            while handed_on(conn) == args.events:
                time.sleep(0.05)
            meter.sample([worker.pid])
            rate, measured, _, _ = steady_rate(lambda: delivered(conn), args.events)
            meter.sample([worker.pid])
        finally:
            stop(worker)
        attempts = conn.execute("SELECT count(*) FROM outbound_deliveryattemptlog").fetchone()[0]
    print(f"events             {args.events} ({measured} in steady state), 1 events worker")
    print(f"delivered          {rate:,.0f} events/s to a loopback receiver (goal >= 1,000)")
    print(f"attempts logged    {attempts} (one per event: none retried)")
    print(f"worker CPU         {meter.total() * 1000 / args.events:.3f} ms per event (all of it)")


def run_dispatch(url, env, args, site, *, with_events: bool) -> float:
    with psycopg.connect(url) as conn:
        seed(conn, args.messages)
    with psycopg.connect(url, autocommit=True) as conn:
        extra = []
        if with_events:
            # A backlog that outlasts the dispatch run: the events worker is busy throughout.
            seed_events(conn, site, args.events * 2)
            extra = [events_worker(env, args)]
            while delivered(conn) < 1000:
                time.sleep(0.05)
        command = [CAREBELL, "worker", "--batch-size", "500", "--concurrency", "64"]
        command += ["--idle", "0.2"]
        workers = [subprocess.Popen(command, env=env, cwd=ROOT) for _ in range(args.workers)]
        dispatchers, events_cpu = CpuMeter(), CpuMeter()
        marks = {}

        def sample() -> None:
            # At t0 and t1 of the steady state: the processes' start-up is not in it.
            marks.setdefault("delivered", delivered(conn))
            dispatchers.sample([w.pid for w in workers])
            events_cpu.sample([e.pid for e in extra])

        try:
            rate, measured, t0, _ = steady_rate(
                lambda: done_count(conn, args.messages), args.messages, at_start=sample
            )
            sample()
            during = (delivered(conn) - marks["delivered"]) / (time.monotonic() - t0)
            busy = delivered(conn) < args.events * 2 if with_events else True
            # Once the patients' messages are out, the events worker's full pace again.
            after, clock = delivered(conn), time.monotonic()
            time.sleep(3)
            then = (delivered(conn) - after) / (time.monotonic() - clock)
        finally:
            stop(*workers, *extra)
    label = "with events" if with_events else "alone      "
    note = "" if busy else " (the events backlog ran out before the dispatch run ended)"
    print(f"dispatch {label} {rate:,.0f} messages/s, {args.workers} workers{note}")
    print(f"dispatchers' CPU   {dispatchers.total() * 1000 / measured:.3f} ms per message")
    if with_events:
        share = events_cpu.total() / max(dispatchers.total(), 1e-9) * 100
        print(f"events meanwhile   {during:,.0f} events/s (the worker gives way to patients)")
        print(f"events worker CPU  {share:.1f} % of the dispatchers' CPU meanwhile")
        print(f"events after it    {then:,.0f} events/s (nothing due for patients)")
    return rate


def profile(args, site: int, receiver_url: str) -> None:
    """The worker's own cost per event, in this process: stable figures on a shared
    machine, where the wall-clock rate is not."""
    import threading

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carebell.settings")
    django.setup()
    from django.db import connection

    from carebell.outbound.delivery import EventDeliverer

    subprocess.run(
        [CAREBELL, "shell", "-c", ENDPOINT_SCRIPT.format(url=receiver_url)],
        env=os.environ, check=True, cwd=ROOT,
    )  # fmt: skip
    url = f"{args.server}/{args.database}"
    with psycopg.connect(url, autocommit=True) as conn:
        seed_events(conn, site, args.profile)
        conn.execute("VACUUM ANALYZE")
    counts = {"queries": 0, "commits": 0}

    def counted(execute, sql, params, many, context):
        counts["queries"] += 1
        return execute(sql, params, many, context)

    connection.ensure_connection()
    commit = connection._commit

    def counted_commit():
        counts["commits"] += 1
        return commit()

    connection._commit = counted_commit
    backend = connection.cursor().connection.info.backend_pid
    stop_when_done = threading.Event()

    def watch() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while delivered(conn) < args.profile:
                time.sleep(0.05)
        stop_when_done.set()

    watcher = threading.Thread(target=watch)
    deliverer = EventDeliverer(per_endpoint=args.per_endpoint)
    cpu, db_cpu, clock = time.process_time(), cpu_seconds(backend), time.monotonic()
    watcher.start()
    with connection.execute_wrapper(counted):
        deliverer.run(stop_when_done, idle_seconds=0.2)
    cpu, db_cpu = time.process_time() - cpu, cpu_seconds(backend) - db_cpu
    wall = time.monotonic() - clock
    watcher.join()
    n = args.profile
    print(f"profile            {n} events, 1 endpoint, --per-endpoint {args.per_endpoint}")
    print(f"worker CPU         {cpu * 1000 / n:.3f} ms per event (this process, all threads)")
    print(f"its backend's CPU  {db_cpu * 1000 / n:.3f} ms per event (PostgreSQL)")
    print(f"queries            {counts['queries'] / n:.4f} per event")
    print(f"commits            {counts['commits'] / n:.4f} per event")
    print(f"wall               {n / wall:,.0f} events/s (shared machine: noisy)")


def main() -> None:
    args = options()
    if args.serve:
        serve(args.serve)
        return
    url = f"{args.server}/{args.database}"
    env = {
        **os.environ,
        "CAREBELL_DATABASE_URL": url,
        "CAREBELL_LOG_LEVEL": "warning",
        "CAREBELL_DEBUG": "0",
        "CAREBELL_SECRET_KEY": os.environ.get("CAREBELL_SECRET_KEY", "bench-" + "x" * 50),
        "CAREBELL_SIM_ENABLED": "1",
        "CAREBELL_SIM_AUTH_TOKEN": secrets.token_urlsafe(32),
        "CAREBELL_WEBHOOKS_ALLOW_PRIVATE": "1",  # the receiver is on loopback
    }
    os.environ.update(env)
    prepare_database(args.server, args.database, env)
    with psycopg.connect(url) as conn:
        site = seed(conn, 0)  # no patient message due: run 1 has the machine to itself
    receiver, receiver_url = start_receiver()
    if args.profile:
        try:
            profile(args, site, receiver_url)
        finally:
            receiver.kill()
        return
    sim, sim_url = start_sim(env, args.messages)
    env.update({"CAREBELL_SMS_PROVIDER": "sim", "CAREBELL_SIM_URL": sim_url})
    try:
        script = ENDPOINT_SCRIPT.format(url=receiver_url)
        subprocess.run([CAREBELL, "shell", "-c", script], env=env, check=True, cwd=ROOT)
        run_events_alone(url, env, args, site)
        if args.events_only:
            return
        alone = run_dispatch(url, env, args, site, with_events=False)
        sim.kill()
        sim.wait()
        sim, sim_url = start_sim(env, args.messages)  # a fresh sim: its records are capped
        env["CAREBELL_SIM_URL"] = sim_url
        together = run_dispatch(url, env, args, site, with_events=True)
    finally:
        receiver.kill()
        sim.kill()
    print(f"slowdown           {(1 - together / alone) * 100:+.1f} % (goal <= 10 %)")


if __name__ == "__main__":
    main()
