"""One run of the fault suite: due SMS through real dispatcher workers, some killed
with SIGKILL, to the simulated provider injecting 500s, 429s with Retry-After,
permanent errors and answers lost after it kept the message; then the tally."""

from __future__ import annotations

import random
from dataclasses import dataclass

from django.utils import timezone

from tests.faults import harness


@dataclass(frozen=True)
class Run:
    messages: int = 5_000
    workers: int = 3
    kills: int = 20
    batch_size: int = 50
    lease: float = 3.0
    timeout: float = 1.0
    failure_rate: float = 0.20
    timeout_rate: float = 0.05
    throttle_rate: float = 0.05
    error_rate: float = 0.01
    deadline: float = 600.0
    seed: int = 5

    def sim_options(self) -> list[str]:
        return [
            *(
                "--failure-rate",
                f"{self.failure_rate:g}",
                "--timeout-rate",
                f"{self.timeout_rate:g}",
            ),
            *("--throttle-rate", f"{self.throttle_rate:g}", "--retry-after", "1"),
            *("--error-rate", f"{self.error_rate:g}", "--stall-seconds", f"{self.timeout * 3:g}"),
            *("--latency-ms", "5", "--seed", str(self.seed)),
        ]


def run(site, options: Run) -> tuple[harness.Tally, int, float]:
    """Plan, send through killed and restarted workers, tally; (tally, kills, seconds)."""
    now = timezone.now()
    site.time_zone = harness.daytime_zone(now)
    site.save()
    harness.due_messages(site, now, options.messages)
    sim = harness.Sim(*options.sim_options(), records=options.messages * 2)
    env = harness.worker_env(sim.url)
    command = harness.fast_worker(options.batch_size, options.lease, options.timeout)
    workers = harness.Workers(env, command)
    try:
        sim.start(env)
        seconds = harness.drive(
            workers,
            count=options.workers,
            kills=options.kills,
            deadline=options.deadline,
            rng=random.Random(options.seed),
        )
        workers.stop_all()
        result = harness.tally(sim, options.messages)
    finally:
        workers.stop_all()
        sim.stop()
    return result, workers.kills, seconds
