"""`carebell worker` as operators run it: a process that stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# Work is handed to a child process, which keeps the real clock.
pytestmark = pytest.mark.real_clock


def wait_for_line(stream, text: str, seconds: float) -> None:
    """Read `stream` until a line holds `text` (the worker says when its signal
    handlers are in place; a fixed sleep raced with a slow start on a busy machine)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        line = stream.readline()
        if text in line:
            return
        if not line:
            pytest.fail(f"the worker ended before saying {text!r}")
    pytest.fail(f"the worker did not say {text!r} within {seconds} s")


@pytest.mark.slow
def test_the_worker_stops_cleanly_on_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    env.update(CAREBELL_DEBUG="1", CAREBELL_DATA_DIR=str(tmp_path))
    carebell = [sys.executable, "-m", "carebell"]
    subprocess.run([*carebell, "migrate", "-v0"], env=env, check=True, timeout=120)
    worker = subprocess.Popen(
        [*carebell, "worker", "--idle", "0.2"], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for_line(worker.stderr, "worker.started", seconds=90)
        assert worker.poll() is None, worker.stderr.read()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
