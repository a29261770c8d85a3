"""Fuzzing: the parser and the MLLP framing take any bytes without crashing or
hanging (no database in the loop).

Each Hypothesis example is a seed from which 20 inputs are derived (mutations of the
shared samples, noise, frames cut into random chunks): 500 examples make 10,000
inputs per test at a cost of seconds, where 10,000 separately drawn examples cost
minutes. A failure names the input that failed.
"""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carebell.interop.hl7.acks import Result, acks_for
from carebell.interop.hl7.framing import Decoder, TooLarge, frame
from carebell.interop.hl7.mapping import Mapping, read
from carebell.interop.hl7.parse import Hl7Error, parse_message
from tests.interop.hl7.samples import FILES, vector

PER_EXAMPLE = 20
QUICK = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
SAMPLES = [vector(name) for name in FILES]
TOKENS = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\r\n", b"\xc3", b"\xe9", b"\xff",
          b'""', b"\\X41\\", b"\\F\\", b"MSH|", b"\x0b", b"\x1c", b"\x00", b"8859/1",
          b"UNICODE UTF-8", b"2.8", b"S26", b"+9999"]  # fmt: skip
ZONE = zoneinfo.ZoneInfo("Europe/London")
NOW = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)
SEEDS = st.integers(0, 2**32 - 1)


def mutate(rng: random.Random) -> bytes:
    """A sample with bytes cut, inserted, replaced or truncated; or plain noise."""
    if rng.random() < 0.2:
        return rng.randbytes(rng.randrange(400))
    data = bytearray(rng.choice(SAMPLES))
    for _ in range(rng.randint(1, 5)):
        at = rng.randrange(len(data) + 1)
        chunk = rng.choice(TOKENS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 8))
        action = rng.randrange(4)
        if action == 0:
            del data[at : at + len(chunk)]
        elif action == 1:
            data[at:at] = chunk
        elif action == 2:
            data[at : at + len(chunk)] = chunk
        else:
            del data[at:]
    return bytes(data)


def survives(raw: bytes) -> None:
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
@given(SEEDS)
def test_the_parser_never_crashes(seed):
    rng = random.Random(seed)
    for _ in range(PER_EXAMPLE):
        raw = mutate(rng)
        try:
            survives(raw)
        except Exception as error:
            raise AssertionError(f"parsing {raw!r} failed") from error


@QUICK
@given(SEEDS)
def test_the_framing_returns_every_frame_whatever_the_chunks(seed):
    rng = random.Random(seed)
    for _ in range(PER_EXAMPLE):
        bodies = [rng.randbytes(rng.randrange(200)).replace(b"\x0b", b"").replace(b"\x1c", b"")
                  for _ in range(rng.randrange(5))]  # fmt: skip
        limit = rng.randint(16, 200)
        stream = b"".join(frame(b) for b in bodies)
        decoder, out, at = Decoder(limit), [], 0
        while at < len(stream):
            size = rng.randint(1, 64)
            out += decoder.feed(stream[at : at + size])
            at += size
        assert len(out) == len(bodies), (bodies, limit)
        for body, got in zip(bodies, out, strict=True):
            if len(body) > limit:
                assert isinstance(got, TooLarge) and got.size == len(body)
            else:
                assert got == body
        assert decoder.pending == 0


@QUICK
@given(SEEDS)
def test_the_framing_takes_noise(seed):
    rng = random.Random(seed)
    for _ in range(PER_EXAMPLE):
        noise = bytes(rng.choices(b"\x0b\x1c\r\nMSH|ab", k=rng.randrange(300)))
        limit = rng.randint(1, 100)
        decoder = Decoder(limit)
        for item in decoder.feed(noise):
            assert isinstance(item, bytes | TooLarge)
            if isinstance(item, bytes):
                assert len(item) <= limit
