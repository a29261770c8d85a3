"""`carebell hl7 listen --processes N` as operators run it: several listener
processes on one port, each with its own database connections, fed over real
sockets; PostgreSQL, which the processes share with the test."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from carebell.appointments.models import Appointment
from carebell.core.vocab import AppointmentStatus
from carebell.interop.hl7.client import Client, ack_code, ack_field
from carebell.interop.hl7.models import Hl7Message
from carebell.people.models import Patient
from tests.faults.harness import database_url
from tests.interop.hl7.samples import siu

# The listeners are other processes: they see committed rows and keep the real clock.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres_only,
    pytest.mark.real_clock,
    pytest.mark.slow,
]


class Listening:
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.port = process, port

    def children(self) -> list[int]:
        pid = self.process.pid
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]

    def client(self) -> Client:
        return Client("127.0.0.1", self.port, timeout=30)


def environment(tmp_path) -> dict[str, str]:
    """The test's database, none of the test process's other settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAREBELL_")}
    env.update(CAREBELL_DEBUG="1", CAREBELL_DATA_DIR=str(tmp_path),
               CAREBELL_DATABASE_URL=database_url(), CAREBELL_LOG_LEVEL="warning")  # fmt: skip
    return env


@contextmanager
def launched(tmp_path, processes: int) -> Iterator[Listening]:
    command = [sys.executable, "-m", "carebell", "hl7", "listen", "--port", "0",
               "--processes", str(processes), "--workers", "2"]  # fmt: skip
    process = subprocess.Popen(command, env=environment(tmp_path), stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line
        assert ("2 processes" in line) == (processes == 2), line
        yield Listening(process, int(line.split("127.0.0.1:")[1].split()[0].rstrip(")")))
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture
def listening(clinic, tmp_path):
    with launched(tmp_path, processes=2) as listening:
        yield listening


def established(pid: int, port: int) -> int:
    """How many of process `pid`'s sockets are connections accepted on `port`."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with_target = os.readlink(fd) if fd.is_symlink() else ""
        if with_target.startswith("socket:["):
            inodes.add(with_target[8:-1])
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, state, inode = int(fields[1].split(":")[1], 16), fields[3], fields[9]
        count += local_port == port and state == "01" and inode in inodes
    return count


def test_connections_are_spread_over_the_processes_and_every_message_is_applied(listening):
    assert len(listening.children()) == 2
    clients = [listening.client() for _ in range(16)]
    try:
        codes, lock = [], threading.Lock()

        def feed(n: int, client: Client) -> None:
            for k in range(3):
                raw = siu(control=f"C{n}-{k}", appt=f"A{n}-{k}", patient=f"P{n}")
                code = ack_code(client.send(raw)[0])
                with lock:
                    codes.append(code)

        threads = [threading.Thread(target=feed, args=(n, c)) for n, c in enumerate(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        # Every process holds some of the 16 open connections (all on one: 1 in 32,768).
        held = [established(pid, listening.port) for pid in listening.children()]
    finally:
        for client in clients:
            client.close()
    assert codes == ["AA"] * 48
    assert sorted(held) != [0, 16] and sum(held) == 16, held
    assert Appointment.objects.count() == 48 and Patient.objects.count() == 16
    assert Hl7Message.objects.count() == 48


def test_one_message_sent_on_many_connections_at_once_is_applied_once(listening):
    raw = siu(control="SAME", appt="A-SAME", patient="P-SAME")
    acks, ready = [], threading.Barrier(8)

    def send() -> None:
        with listening.client() as client:
            ready.wait(30)
            acks.append(client.send(raw)[0])

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert [ack_code(a) for a in acks] == ["AA"] * 8
    assert {ack_field(a, "MSA", 2) for a in acks} == {"SAME"}
    assert Appointment.objects.count() == 1 and Patient.objects.count() == 1
    assert Hl7Message.objects.count() == 1  # the others are its resends


def test_an_older_message_on_another_connection_does_not_undo_a_newer_one(listening):
    newer = siu("S15", control="C2", sent=dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC))
    older = siu("S12", control="C1", sent=dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC))
    with listening.client() as first:
        assert ack_code(first.send(newer)[0]) == "AA"
    for _ in range(4):  # new connections, so most likely some land in the other process
        with listening.client() as later:
            assert ack_code(later.send(older)[0]) == "AA"
    assert Appointment.objects.get().status == AppointmentStatus.CANCELLED


def test_a_listener_process_that_dies_is_replaced_and_sigterm_stops_them_all(listening):
    first = listening.children()
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = listening.children()
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no new listener process: {listening.children()}")
    for n in range(4):  # whichever process a connection lands in answers it
        with listening.client() as client:
            assert ack_code(client.send(siu(control=f"K{n}", appt=f"K{n}"))[0]) == "AA"
    assert listening.process.poll() is None
    children = listening.children()
    listening.process.send_signal(signal.SIGTERM)
    assert listening.process.wait(30) == 0
    assert not [pid for pid in children if alive(pid)]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", listening.port), 2):
        pass


def test_the_processes_end_with_their_parent_however_it_ends(listening):
    children = listening.children()
    listening.process.kill()  # SIGKILL: the parent cannot pass anything on
    listening.process.wait(10)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in children if alive(pid)]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", listening.port), 2):
        pass


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_one_process_listens_without_children_and_sigterm_stops_it(clinic, tmp_path):
    with launched(tmp_path, processes=1) as listening:
        assert listening.children() == []
        with listening.client() as client:
            assert ack_code(client.send(siu(control="ONE"))[0]) == "AA"
        listening.process.send_signal(signal.SIGTERM)
        assert listening.process.wait(30) == 0
    assert Hl7Message.objects.count() == 1


def test_a_port_taken_by_another_program_is_a_clear_error(clinic, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "carebell", "hl7", "listen", "--port", str(port),
                   "--processes", "2"]  # fmt: skip
        done = subprocess.run(command, env=environment(tmp_path), capture_output=True,
                              text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
