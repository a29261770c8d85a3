"""A small MLLP client: send messages, read their ACKs (tests, the benchmark,
`carebell hl7 send`)."""

from __future__ import annotations

import socket

from carebell.interop.hl7.framing import Decoder, frame


class Client:
    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.decoder = Decoder(16 * 1024 * 1024)
        self.pending: list[bytes] = []

    def send(self, message: bytes, *, acks: int = 1) -> list[bytes]:
        """Send one message and wait for `acks` ACK frames."""
        self.sock.sendall(frame(message))
        return self.read(acks)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, count: int = 1) -> list[bytes]:
        while len(self.pending) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection")
            self.pending += [m for m in self.decoder.feed(chunk) if isinstance(m, bytes)]
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK."""
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA"):
            return segment[4:].split(segment[3:4])[0].decode("latin-1")
    return ""


def ack_field(ack: bytes, segment_id: str, n: int) -> str:
    for segment in ack.split(b"\r"):
        if segment.startswith(segment_id.encode()):
            fields = segment.decode("utf-8", "replace").split("|")
            n = n - 1 if segment_id == "MSH" else n  # MSH-1 is the separator itself
            return fields[n] if n < len(fields) else ""
    return ""
