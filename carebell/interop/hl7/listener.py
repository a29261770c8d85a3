"""The MLLP listener: asyncio for the sockets, a thread pool for the database.

Each connection is read frame by frame (carebell.interop.hl7.framing); each message
is handed to `receive` in a worker thread, and its ACKs are written back only when
that returns — after the commit. A connection's messages are handled in order (the
sender waits for each ACK); connections run in parallel. A connection silent for
`idle_timeout` seconds is closed; a message over the size limit gets an AR and the
connection goes on with the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import DatabaseError, OperationalError, close_old_connections, connection
from django.utils import timezone

from carebell.interop.hl7 import receive as inbound
from carebell.interop.hl7.acks import Result, acks_for
from carebell.interop.hl7.framing import Decoder, TooLarge, frame
from carebell.interop.hl7.models import Hl7Message, Outcome
from carebell.interop.hl7.receive import ACK_JOIN, _partial_header, digest_of

logger = logging.getLogger(__name__)


class Listener:
    def __init__(self, *, max_bytes: int, idle_timeout: float = 300.0, workers: int = 8,
                 default_site=None) -> None:  # fmt: skip
        self.max_bytes = max_bytes
        self.idle_timeout = idle_timeout
        self.default_site = default_site
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hl7")
        self.server: asyncio.base_events.Server | None = None
        self.connections = 0

    async def start(self, host: str, port: int) -> int:
        self.server = await asyncio.start_server(self._serve, host, port, limit=65536)
        return self.server.sockets[0].getsockname()[1]

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.server.close()
        await self.server.wait_closed()
        await asyncio.get_running_loop().run_in_executor(None, self._close_pool)

    def _close_pool(self) -> None:
        """Each worker thread closes its own database connection (Django's are per
        thread): one task per thread, held at a barrier so no thread takes two."""
        count = len(self.pool._threads)
        barrier = threading.Barrier(count + 1) if count else None

        def close() -> None:
            connection.close()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)

        futures = [self.pool.submit(close) for _ in range(count)]
        if barrier is not None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=10)
        for future in futures:
            future.result()
        self.pool.shutdown(wait=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        decoder = Decoder(self.max_bytes)
        self.connections += 1
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(reader.read(65536), self.idle_timeout)
                except TimeoutError:
                    break
                if not chunk:
                    break
                for item in decoder.feed(chunk):
                    acks = await loop.run_in_executor(self.pool, self._handle, item, peer)
                    if acks is None:
                        return  # the database is away: no ACK, the sender will resend
                    for ack in acks:
                        writer.write(frame(ack))
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.connections -= 1
            writer.close()

    def _handle(self, item, peer: str) -> list[bytes] | None:
        for attempt in range(12):
            try:
                if isinstance(item, TooLarge):
                    return self._too_large(item, peer)
                return inbound.receive(
                    item, via="mllp", peer=peer, default_site=self.default_site
                ).acks
            except OperationalError:
                # A lock held by another writer (SQLite) or a lost connection: the
                # transaction was rolled back, so trying again is safe.
                connection.close()
                time.sleep(min(0.5, 0.02 * 2**attempt) * (0.5 + random.random()))
            except DatabaseError:
                break
        logger.warning("HL7 message from %s not stored: database error", peer)
        close_old_connections()
        connection.close()
        return None

    def _too_large(self, item: TooLarge, peer: str) -> list[bytes]:
        """An AR naming the limit; the head is kept so the message is not lost without
        a trace (its sender learns why from the ACK)."""
        now = timezone.now()
        header = _partial_header(item.head)
        text = (
            f"The message is larger than {self.max_bytes} bytes (CAREBELL_HL7_MAX_MESSAGE_BYTES)."
        )
        acks = acks_for(header, Result("AR", text, "207"), now)
        Hl7Message.objects.create(
            received_at=now, via="mllp", peer=peer[:200],
            sender=header.sender[:140] if header else "", control_id="",
            digest=digest_of(item.head), message_type=header.message_type[:24] if header else "",
            raw=item.head, outcome=Outcome.REJECTED,
            reason=f"{text} Received {item.size} bytes; the first {len(item.head)} are kept.",
            ack=ACK_JOIN.join(acks),
        )  # fmt: skip
        return acks


def run(host: str, port: int, *, max_bytes: int, idle_timeout: float, workers: int = 8,
        default_site=None, ready=None, stop: asyncio.Event | None = None) -> None:  # fmt: skip
    """Serve until `stop` is set (or forever). `ready(port)` is called once listening."""

    async def main():
        listener = Listener(max_bytes=max_bytes, idle_timeout=idle_timeout, workers=workers,
                            default_site=default_site)  # fmt: skip
        bound = await listener.start(host, port)
        if ready is not None:
            ready(bound, asyncio.get_running_loop())
        await listener.serve_until(stop or asyncio.Event())

    asyncio.run(main())
