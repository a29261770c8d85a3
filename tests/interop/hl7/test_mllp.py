"""The MLLP listener over a real socket on loopback, started in the test."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import threading

import pytest

from carebell.appointments.models import Appointment
from carebell.core.vocab import AppointmentStatus
from carebell.interop.hl7 import receive as inbound
from carebell.interop.hl7.client import Client, ack_code, ack_field
from carebell.interop.hl7.framing import frame
from carebell.interop.hl7.listener import Listener
from carebell.interop.hl7.models import Hl7Message, Outcome
from carebell.people.models import Patient
from tests.interop.hl7.samples import siu, vector

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def listener(clinic):
    """A listener on an ephemeral port, in a thread with its own event loop."""
    started = threading.Event()
    state = {}

    def serve():
        async def main():
            server = Listener(max_bytes=4096, idle_timeout=2.0, workers=4)
            state["port"] = await server.start("127.0.0.1", 0)
            state["stop"], state["loop"], state["server"] = (
                asyncio.Event(),
                asyncio.get_running_loop(),
                server,
            )
            started.set()
            await server.serve_until(state["stop"])

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield state
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(10)


def connect(listener) -> Client:
    return Client("127.0.0.1", listener["port"], timeout=20)


def test_several_messages_on_one_connection_each_get_their_ack(listener):
    with connect(listener) as client:
        acks = [client.send(siu(control=f"C{n}", appt=f"A{n}"))[0] for n in range(3)]
    assert [(ack_code(a), ack_field(a, "MSA", 2)) for a in acks] == [
        ("AA", "C0"), ("AA", "C1"), ("AA", "C2")]  # fmt: skip
    assert Appointment.objects.count() == 3


def test_the_ack_comes_only_after_the_change_is_committed(listener, monkeypatch):
    seen = {}
    real = inbound._apply

    def spy(*args, **kwargs):
        got = real(*args, **kwargs)
        # Still inside the worker: a second connection cannot see the row until commit.
        seen["committed"] = Appointment.objects.filter(external_id="A1").exists()
        return got

    monkeypatch.setattr(inbound, "_apply", spy)
    with connect(listener) as client:
        ack = client.send(siu())[0]
        # The ACK is here: the row is visible from this (the test's) connection.
        assert Appointment.objects.filter(external_id="A1").exists()
    assert ack_code(ack) == "AA" and seen["committed"]


def test_a_duplicate_resend_gets_the_original_ack_and_changes_nothing(listener):
    with connect(listener) as client:
        first = client.send(siu())[0]
        Appointment.objects.update(location_name="Changed here")
        again = client.send(siu())[0]
    assert again == first
    assert Appointment.objects.get().location_name == "Changed here"
    assert Hl7Message.objects.get().resent == 1


def test_an_older_message_does_not_undo_a_newer_one(listener):
    newer = siu("S15", control="C2", sent=dt.datetime(2026, 11, 25, 14, 30, tzinfo=dt.UTC))
    older = siu("S12", control="C1", sent=dt.datetime(2026, 11, 25, 14, 0, tzinfo=dt.UTC))
    with connect(listener) as client:
        assert ack_code(client.send(newer)[0]) == "AA"
        assert ack_code(client.send(older)[0]) == "AA"
    assert Appointment.objects.get().status == AppointmentStatus.CANCELLED


def test_an_oversized_message_gets_an_ar_and_the_connection_goes_on(listener):
    big = siu(control="BIG").replace(b"RGS|1", b"NTE|1||" + b"x" * 5000 + b"\rRGS|1")
    with connect(listener) as client:
        ack = client.send(big)[0]
        assert ack_code(ack) == "AR"
        assert "larger than 4096 bytes" in ack_field(ack, "MSA", 3)
        assert ack_field(ack, "MSA", 2) == "BIG"
        assert ack_code(client.send(siu(control="NEXT"))[0]) == "AA"
    assert Hl7Message.objects.filter(outcome=Outcome.REJECTED).count() == 1
    assert Appointment.objects.count() == 1


@pytest.mark.parametrize("charset, encoding", [("UNICODE UTF-8", "utf-8"), ("8859/1", "latin-1")])
def test_non_ascii_names_over_the_wire(listener, charset, encoding):
    with connect(listener) as client:
        ack = client.send(siu(charset=charset, given="Zoë", family="Ångström"))[0]
    assert ack_code(ack) == "AA"
    assert Patient.objects.values_list("first_name", "last_name").get() == ("Zoë", "Ångström")


def test_noise_and_malformed_frames_get_ar_and_the_connection_stays_usable(listener):
    with connect(listener) as client:
        client.send_raw(b"garbage before any frame\r\n")
        assert ack_code(client.send(b"\x00\x01\x02binary noise\xff")[0]) == "AR"
        assert ack_code(client.send(b"MSH|^~\\&|PMS|CLINIC|||2026||SIU^S12|T1|P|2.5\rSCH|A")[0]) \
            in ("AE", "AR")  # fmt: skip
        assert ack_code(client.send(siu())[0]) == "AA"
    assert Hl7Message.objects.filter(outcome__in=[Outcome.REJECTED, Outcome.ERROR]).count() == 2


def test_many_connections_at_once(listener):
    results = []

    def one(n):
        with connect(listener) as client:
            for k in range(3):
                raw = siu(control=f"C{n}-{k}", appt=f"A{n}-{k}", patient=f"P{n}")
                results.append(ack_code(client.send(raw)[0]))

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["AA"] * 18
    assert Appointment.objects.count() == 18 and Patient.objects.count() == 6


def test_an_idle_connection_is_closed(listener):
    sock = socket.create_connection(("127.0.0.1", listener["port"]), timeout=10)
    try:
        assert sock.recv(10) == b""  # closed after the 2 s idle timeout
    finally:
        sock.close()


def test_a_vector_sent_live(listener):
    with connect(listener) as client:
        ack = client.send(vector("siu_s12_fhirconverter_01.hl7"))[0]
    assert ack_code(ack) == "AA"
    assert ack_field(ack, "MSA", 2) == "MSG00012"
    assert ack_field(ack, "MSH", 5) == "SCHApp"  # addressed back to the sender
    assert frame(b"x") == b"\x0bx\x1c\r"
