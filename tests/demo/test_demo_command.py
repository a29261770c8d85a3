import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

# Work is handed to a child process, which keeps the real clock.
pytestmark = pytest.mark.real_clock


CAREBELL = Path(sys.executable).with_name("carebell")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 90) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo exited early: {process.communicate()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer in {seconds} s")


def sim_messages(sim_url: str) -> list[dict]:
    with urllib.request.urlopen(f"{sim_url}/sim/api/messages", timeout=5) as response:
        return json.load(response)["messages"]


def texts(sim_url: str) -> list[dict]:
    return [m for m in sim_messages(sim_url) if m["kind"] == "sms"]


@pytest.mark.slow
def test_the_demo_serves_the_login_page_texts_the_sim_at_any_hour_and_stops_on_sigterm(
    tmp_path,
):
    port, sim_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    # Without CAREBELL_DEBUG: the demo is development by definition.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    env.update(CAREBELL_DATA_DIR=str(tmp_path), CAREBELL_SIM_URL=sim_url)
    process = subprocess.Popen(
        [str(CAREBELL), "demo", "--port", str(port), "--patients", "30"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/admin/login/", process) == 200
        # The simulated phone starts in its own thread beside the web server.
        assert wait_for(f"{sim_url}/sim/api/messages", process) == 200
        # The planner and the dispatcher run in the demo: welcome messages for the
        # newly seeded patients reach the simulated phone within seconds, texts
        # included whatever the hour, since the demo sites run where it is daytime.
        deadline = time.monotonic() + 60
        while not texts(sim_url) and time.monotonic() < deadline:
            time.sleep(1)
        assert texts(sim_url), f"no text reached the simulated phone: {sim_messages(sim_url)}"
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    password = (tmp_path / "demo-passwords.json").read_text()
    assert f"the staff app at http://127.0.0.1:{port}/staff/" in stdout
    assert "admin /" in stdout and "stopped" in stdout
    assert "so texts go out at once" in stdout
    assert '"admin"' in password
