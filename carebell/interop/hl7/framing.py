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
        data = memoryview(chunk)
        while len(data):
            if not self.inside:
                at = bytes(data).find(START)
                if at == -1:
                    self.junk += sum(1 for b in bytes(data) if b not in b"\r\n\x1c")
                    return out
                self.junk += sum(1 for b in bytes(data[:at]) if b not in b"\r\n\x1c")
                data = data[at + 1 :]
                self.inside, self.buffer, self.skipping = True, bytearray(), 0
                continue
            end = bytes(data).find(END)
            piece = data if end == -1 else data[:end]
            if self.skipping:
                self.skipping += len(piece)
            elif len(self.buffer) + len(piece) > self.max_bytes:
                self.head = bytes(self.buffer[:4096]) or bytes(piece[:4096])
                self.skipping = len(self.buffer) + len(piece)
                self.buffer = bytearray()
            else:
                self.buffer += piece
            if end == -1:
                return out
            data = data[end + 1 :]
            if len(data) and data[0] == CR[0]:
                data = data[1:]
            if self.skipping:
                out.append(TooLarge(self.skipping, self.head))
            else:
                out.append(bytes(self.buffer))
            self.inside, self.buffer, self.skipping = False, bytearray(), 0
        return out

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame (a message cut off when the peer goes away)."""
        return len(self.buffer) if self.inside else 0
