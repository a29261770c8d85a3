"""The MLLP listener: asyncio for the sockets, a thread pool for the database.

Each connection is read frame by frame (carebell.interop.hl7.framing); each message
is handed to `receive` in a worker thread, and its ACKs are written back only when
that returns — after the commit. A connection's messages are handled in order (the
sender waits for each ACK); connections run in parallel. A connection silent for
`idle_timeout` seconds is closed; a message over the size limit gets an AR and the
connection goes on with the next one.

One process runs its Python on one core (the GIL), however many threads it has:
`run_processes` starts several listeners on one port so that connections are spread
over the machine's cores.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
import multiprocessing
import os
import queue
import random
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from multiprocessing.connection import wait as wait_for_any

from django.db import (
    DatabaseError,
    OperationalError,
    close_old_connections,
    connection,
    connections,
)
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
        self.pool = Workers(workers, name="hl7", on_exit=_close_connection)
        self.server: asyncio.base_events.Server | None = None
        self.connections = 0

    async def start(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        self.server = await asyncio.start_server(
            self._serve, host, port, limit=65536, reuse_port=reuse_port
        )
        return self.server.sockets[0].getsockname()[1]

    async def serve_until(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.server.close()
        await self.server.wait_closed()
        # Each worker thread closes its own database connection as it ends.
        await asyncio.get_running_loop().run_in_executor(None, self.pool.shutdown)

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


def _close_connection() -> None:
    connection.close()  # the calling thread's (Django's connections are per thread)


class Workers(Executor):
    """Threads for the database work, each with its own connection; the thread idle
    for the shortest time takes the next task (last in, first out), where
    ThreadPoolExecutor hands tasks to its idle threads in turn. Taking turns ran a
    connection's messages each on another thread, with another database connection:
    through the socket, 1.1 ms more CPU per message than `receive` called directly
    (measured in one process), 0.1–0.2 ms with this. Threads are started as tasks
    need them, up to `size`; `on_exit` runs in each as it ends."""

    def __init__(self, size: int, *, name: str, on_exit: Callable[[], None]) -> None:
        self.size, self.name, self.on_exit = size, name, on_exit
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []  # the idle threads' inboxes, latest last
        self._backlog: collections.deque = collections.deque()
        self._threads: list[threading.Thread] = []
        self._closed = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        task = (future, fn, args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new tasks after shutdown")
            if self._idle:
                self._idle.pop().put(task)
            elif len(self._threads) < self.size:
                inbox: queue.SimpleQueue = queue.SimpleQueue()
                inbox.put(task)
                thread = threading.Thread(target=self._work, args=(inbox,), daemon=True,
                                          name=f"{self.name}_{len(self._threads)}")  # fmt: skip
                self._threads.append(thread)
                thread.start()
            else:
                self._backlog.append(task)
        return future

    def _work(self, inbox: queue.SimpleQueue) -> None:
        try:
            while (task := inbox.get()) is not None:
                future, fn, args, kwargs = task
                result = error = None
                ran = future.set_running_or_notify_cancel()
                if ran:
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as caught:  # the caller's to see, as the stdlib's pool
                        error = caught
                del task, fn, args, kwargs  # nothing kept alive while idle
                # Back among the idle before the caller hears of the result, so that the
                # caller's next task (the connection's next message) comes to this thread.
                with self._lock:
                    if self._backlog:
                        inbox.put(self._backlog.popleft())
                    elif self._closed:
                        inbox.put(None)
                    else:
                        self._idle.append(inbox)
                if ran and error is None:
                    future.set_result(result)
                elif ran:
                    future.set_exception(error)
                del future, result, error
        finally:
            self.on_exit()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """No new tasks; those submitted are still run. With `wait`, until every
        thread has ended."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            if cancel_futures:
                for future, *_ in self._backlog:
                    future.cancel()
        for inbox in idle:
            inbox.put(None)
        if wait:
            for thread in list(self._threads):
                thread.join()


def run(host: str, port: int, *, max_bytes: int, idle_timeout: float, workers: int = 8,
        default_site=None, ready=None, stop: asyncio.Event | None = None,
        stop_on_signals: bool = False, reuse_port: bool = False) -> None:  # fmt: skip
    """Serve until `stop` is set, SIGTERM or SIGINT (with `stop_on_signals`), or
    forever. `ready(port)` is called once listening."""

    async def main():
        listener = Listener(max_bytes=max_bytes, idle_timeout=idle_timeout, workers=workers,
                            default_site=default_site)  # fmt: skip
        bound = await listener.start(host, port, reuse_port=reuse_port)
        done = stop or asyncio.Event()
        if stop_on_signals:
            for signum in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(signum, done.set)
        if ready is not None:
            ready(bound)
        await listener.serve_until(done)

    asyncio.run(main())


RESTART_PAUSE = 1.0  # a listener that dies at once is not restarted in a tight loop
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent ends


def run_processes(host: str, port: int, *, processes: int, ready=None, **options) -> None:
    """`processes` listeners on one port, each a process with its own event loop,
    threads and database connections, until SIGTERM or SIGINT.

    The kernel spreads new connections over them (SO_REUSEPORT). A connection stays
    with the process that took it, so its messages are still handled one at a time,
    in order; messages for one patient that arrive in two processes wait for each other
    on the patient's row lock (receive.py). A process that dies is started again, and
    the connections it held are closed: their senders send again what got no ACK.
    """
    # Holding the port bound, but not listening, keeps it ours between restarts and
    # tells us the number when `port` is 0; only listening sockets get connections.
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    holder = socket.socket(family, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, port))
    port = holder.getsockname()[1]
    connections.close_all()  # a child must not share the parent's database socket
    context = multiprocessing.get_context("fork")
    stopping = threading.Event()

    def start() -> multiprocessing.Process:
        told, tell = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(host, port, options, os.getpid(), tell),
                                name="carebell-hl7", daemon=True)  # fmt: skip
        child.start()
        tell.close()
        child.ready, child.started_at = told, time.monotonic()
        return child

    def stop(*_) -> None:
        stopping.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    children = [start() for _ in range(processes)]
    try:
        for child in children:
            if not child.ready.poll(60) or child.ready.recv() != port:
                raise OSError(f"a listener process did not start on port {port}")
        if ready is not None:
            ready(port)
        while not stopping.is_set():
            ended = wait_for_any([c.sentinel for c in children], timeout=0.5)
            for index, child in enumerate(children):
                if child.sentinel in ended and not stopping.is_set():
                    logger.warning("HL7 listener process %s ended (exit %s); starting another",
                                   child.pid, child.exitcode)  # fmt: skip
                    if time.monotonic() - child.started_at < RESTART_PAUSE:
                        stopping.wait(RESTART_PAUSE)
                    child.ready.close()
                    child.close()  # its pipe and process handle, not one per restart
                    children[index] = start()
    except EOFError:
        raise OSError(f"a listener process could not listen on port {port}") from None
    finally:
        for child in children:
            if child.is_alive():
                os.kill(child.pid, signal.SIGTERM)
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
        holder.close()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _child(host: str, port: int, options: dict, parent: int, tell) -> None:
    """One listener process: says its port once listening, stops on SIGTERM — and
    when the parent is gone, however it ended, so that no listener is left behind
    holding the port and its database connections."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)  # until its loop handles them
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it ended before that was asked for
        raise SystemExit(1)
    try:
        run(host, port, reuse_port=True, stop_on_signals=True, ready=tell.send, **options)
    except OSError as error:  # the parent says it cannot listen; no traceback twice
        logger.warning("HL7 listener process cannot listen on port %s: %s", port, error)
        raise SystemExit(1) from None
    finally:
        tell.close()
