"""CPU and memory of processes, read from /proc (Linux), for the benchmarks."""

from __future__ import annotations

import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the largest resident set the process has had, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """The direct children of a process (gunicorn's workers, the listener's processes)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def pids_named(name: str) -> list[int]:
    """Every process whose command name is `name` (e.g. the PostgreSQL server's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class CpuMeter:
    """CPU spent by a changing set of processes between `start()` and `stop()`,
    counting processes that exit in between through their last reading."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def sample(self, pids: list[int]) -> None:
        for pid in pids:
            now = cpu_seconds(pid)
            if now:
                self.first.setdefault(pid, now)
                self.last[pid] = now

    def total(self) -> float:
        return sum(self.last[p] - self.first.get(p, 0.0) for p in self.last)
