"""Hypothesis: the parser and the MLLP framing take any bytes without crashing or
hanging (no database in the loop)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carebell.interop.hl7.acks import Result, acks_for
from carebell.interop.hl7.framing import Decoder, TooLarge, frame
from carebell.interop.hl7.mapping import Mapping, read
from carebell.interop.hl7.parse import Hl7Error, parse_message
from tests.interop.hl7.samples import FILES, vector

QUICK = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
SAMPLES = [vector(name) for name in FILES]
ZONE = zoneinfo.ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@st.composite
def mutated(draw):
    """A sample with bytes replaced, cut, inserted or the header altered."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["cut", "insert", "replace", "truncate"]))
        chunk = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(
            [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\xc3", b"\xe9", b'""', b"\\X", b"MSH"]
        ))  # fmt: skip
        if action == "cut":
            del data[at : at + len(chunk)]
        elif action == "insert":
            data[at:at] = chunk
        elif action == "replace":
            data[at : at + len(chunk)] = chunk
        else:
            del data[at:]
    return bytes(data)


def _survives(raw: bytes) -> None:
    try:
        message = parse_message(raw)
    except Hl7Error as error:
        assert error.ack in ("AE", "AR") and error.text
        assert acks_for(None, Result(error.ack, error.text, error.code), NOW)
        return
    try:
        read(message, Mapping(), ZONE)
    except Hl7Error as error:
        assert error.ack in ("AE", "AR")
    for ack in acks_for(message.header, Result("AE", "x"), NOW):  # none when MSH-16 is NE
        assert ack.startswith(b"MSH")


@QUICK
@given(st.one_of(mutated(), st.binary(max_size=400), st.text(max_size=200).map(str.encode)))
def test_the_parser_never_crashes(raw):
    _survives(raw)


@QUICK
@given(
    st.lists(st.binary(max_size=120), max_size=4),
    st.lists(st.integers(1, 64), min_size=1, max_size=4),
    st.integers(16, 200),
)
def test_the_framing_returns_every_frame_whatever_the_chunks(messages, cuts, limit):
    bodies = [m.replace(b"\x0b", b"").replace(b"\x1c", b"") for m in messages]
    stream = b"".join(frame(b) for b in bodies)
    decoder = Decoder(limit)
    out, at, i = [], 0, 0
    while at < len(stream):
        size = cuts[i % len(cuts)]
        out += decoder.feed(stream[at : at + size])
        at, i = at + size, i + 1
    assert len(out) == len(bodies)
    for body, got in zip(bodies, out, strict=True):
        if len(body) > limit:
            assert isinstance(got, TooLarge) and got.size == len(body)
        else:
            assert got == body
    assert decoder.pending == 0


@QUICK
@given(st.binary(max_size=300), st.integers(1, 100))
def test_the_framing_takes_noise(noise, limit):
    decoder = Decoder(limit)
    for item in decoder.feed(noise):
        assert isinstance(item, bytes | TooLarge)
        if isinstance(item, bytes):
            assert len(item) <= limit
