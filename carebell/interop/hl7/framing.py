"""MLLP framing (pure): <VT> message <FS><CR>, per HL7's Minimal Lower Layer Protocol.

`Decoder.feed(chunk)` returns what the bytes so far complete: whole messages, and
`TooLarge` for a message longer than the limit (its bytes are dropped up to its end
so the next one on the connection is read cleanly). Bytes outside a frame are
dropped and counted. Some senders end a frame with FS alone: FS followed by anything
but CR still ends it.
"""

from __future__ import annotations

from dataclasses import dataclass

START, END, CR = b"\x0b", b"\x1c", b"\r"


@dataclass(frozen=True, slots=True)
class TooLarge:
    size: int  # bytes received before the frame was given up (at least the limit)
    head: bytes  # its first bytes, so the ACK can name its MSH-10 when it is there


def frame(message: bytes) -> bytes:
    return START + message + END + CR


class Decoder:
    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.inside = False
        self.skipping = 0  # > 0: dropping an oversized frame, bytes so far
        self.head = b""
        self.junk = 0

    def feed(self, chunk: bytes) -> list[bytes | TooLarge]:
        out: list[bytes | TooLarge] = []
        at, size = 0, len(chunk)
        while at < size:
            if not self.inside:
                begin = chunk.find(START, at)
                stop = size if begin == -1 else begin
                self.junk += stop - at - sum(chunk.count(b, at, stop) for b in (b"\r", b"\n"))
                if begin == -1:
                    return out
                at, self.inside, self.buffer, self.skipping = begin + 1, True, bytearray(), 0
                continue
            end = chunk.find(END, at)
            stop = size if end == -1 else end
            self._take(chunk, at, stop)
            if end == -1:
                return out
            at = end + 1
            if at < size and chunk[at] == CR[0]:
                at += 1
            out.append(TooLarge(self.skipping, self.head) if self.skipping else bytes(self.buffer))
            self.inside, self.buffer, self.skipping = False, bytearray(), 0
        return out

    def _take(self, chunk: bytes, begin: int, stop: int) -> None:
        length = stop - begin
        if self.skipping:
            self.skipping += length
        elif len(self.buffer) + length > self.max_bytes:
            self.head = bytes(self.buffer[:4096]) or chunk[begin : begin + 4096]
            self.skipping = len(self.buffer) + length
            self.buffer = bytearray()
        else:
            self.buffer += chunk[begin:stop]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (a message cut off when the peer goes away)."""
        return len(self.buffer) if self.inside else 0
