"""HTTP load for the server benchmarks, from requests made beforehand: full speed
(`flat_out`) and a fixed rate (`at_rate`).

The server, PostgreSQL and the load generator share the machine's two cores, so
what the generator spends per request is taken from the server. Requests are
therefore made (and signed) before the timed run, and sent by wrk (Debian's
package `wrk`: C, a few microseconds per request) when it is installed; without
it they are sent by aiohttp, which costs the server a good part of a core, and
the benchmark says which one ran. Every request is sent at most once: a replayed
webhook or Idempotency-Key is answered from its first answer, which is cheaper
and would flatter the figures, so running out is an error, not a wrap-around.

The fixed rate is sent by this process on plain asyncio sockets: each request's
bytes made beforehand, each on a connection of its own opened when it is due, its
latency counted from then, so a stall of the server counts in full for every
request it delays (none waits for a free connection, where wrk would count from
when it got one). That costs about 0.3 ms of CPU per request here, connection
included (aiohttp's client: 0.5 ms); against a bare socket server its p99 at 750
requests/s is 1.5 ms.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Result:
    rate: float  # requests per second
    p50_ms: float
    p99_ms: float
    answers: dict[str, int]  # "200" → count (aiohttp), or "2xx/3xx" / "other" (wrk)


def workers(args) -> str:
    """How gunicorn's workers were described to it (--threads above 1: gthread)."""
    return "sync workers" if args.threads <= 1 else f"gthread workers of {args.threads} threads"


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "aiohttp"


def flat_out(base: str, requests: list[Request], seconds: float, connections: int) -> Result:
    """As many of `requests` as `connections` connections get answered in `seconds`."""
    if generator() == "wrk":
        return _wrk(base, requests, seconds, connections)
    return asyncio.run(_aiohttp(base, requests, seconds, connections))


def _line(request: Request) -> str:
    fields = [request.method, request.path, request.body or ""]
    for name, value in request.headers:
        fields += [name, value]
    if any("\t" in f or "\n" in f for f in fields):
        raise ValueError(f"a tab or newline in a request to {request.path}")
    return "\t".join(fields)


def _wrk(base: str, requests: list[Request], seconds: float, connections: int) -> Result:
    threads = min(2, connections)
    with tempfile.TemporaryDirectory(prefix="carebell-load-") as folder:
        stem = Path(folder) / "requests"
        for number in range(threads):  # thread n sends requests n, n + threads, …
            lines = (_line(r) for r in requests[number::threads])
            (stem.parent / f"requests.{number}").write_text("\n".join(lines) + "\n")
        script = str(HERE / "replay.lua")
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
                   "--timeout", "10s", "-s", script, base, "--", str(stem)]  # fmt: skip
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    found = re.search(r"^loadgen (.*)$", out, re.MULTILINE)
    if found is None:
        raise SystemExit(f"wrk printed no figures:\n{out}")
    figures = {k: float(v) for k, v in (pair.split("=") for pair in found.group(1).split())}
    if figures["ran_out"]:
        raise SystemExit(f"wrk sent all {len(requests)} prepared requests: make more")
    done, bad = int(figures["requests"]), int(figures["non2xx"])
    answers = {"2xx/3xx": done - bad, "other": bad}
    if figures["errors"]:
        answers["socket errors"] = int(figures["errors"])
    return Result(done / figures["seconds"], figures["p50_us"] / 1000, figures["p99_us"] / 1000,
                  {k: v for k, v in answers.items() if v})  # fmt: skip


def at_rate(base: str, requests: list[Request], rate: float) -> Result:
    """`requests` sent `rate` a second, each when it is due; latency from then."""
    return asyncio.run(_at_rate(base, requests, rate))


def _raw(host: str, request: Request) -> bytes:
    body = (request.body or "").encode()
    head = [f"{request.method} {request.path} HTTP/1.1", f"Host: {host}",
            f"Content-Length: {len(body)}", "Connection: close"]  # fmt: skip
    head += [f"{name}: {value}" for name, value in request.headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Exchange(asyncio.Protocol):
    """One request on its own connection; `done` gets the status (0: no answer)."""

    def __init__(self, data: bytes, done: asyncio.Future):
        self.data, self.done, self.head = data, done, b""

    def connection_made(self, transport):
        transport.write(self.data)

    def data_received(self, data):
        if len(self.head) < 12:
            self.head += data

    def connection_lost(self, exc):  # the server closes once it has answered
        if not self.done.done():
            status = self.head[9:12]
            self.done.set_result(int(status) if status.isdigit() else 0)


async def _at_rate(base: str, requests: list[Request], rate: float) -> Result:
    host, _, port = base.removeprefix("http://").partition(":")
    raw = [_raw(base.removeprefix("http://"), r) for r in requests]
    loop = asyncio.get_running_loop()
    answers: dict[str, int] = {}
    latencies: list[float] = []

    async def one(data: bytes, due: float):
        done = loop.create_future()
        try:
            await loop.create_connection(lambda: _Exchange(data, done), host, int(port or 80))
            status = await done
        except OSError:
            status = 0
        latencies.append((time.perf_counter() - due) * 1000)
        code = str(status) if status else "no answer"
        answers[code] = answers.get(code, 0) + 1

    tasks = []
    start = time.perf_counter()
    for n, data in enumerate(raw):
        due = start + n / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(data, due)))
    await asyncio.gather(*tasks)
    return _result(latencies, time.perf_counter() - start, answers)


async def _aiohttp(base: str, requests: list[Request], seconds: float, connections: int) -> Result:
    import aiohttp

    answers: dict[str, int] = {}
    latencies: list[float] = []
    pending = iter(requests)
    deadline = time.perf_counter() + seconds

    async def one_connection(session):
        while time.perf_counter() < deadline:
            request = next(pending, None)
            if request is None:
                raise SystemExit(f"aiohttp sent all {len(requests)} prepared requests: make more")
            began = time.perf_counter()
            async with session.request(
                request.method, base + request.path, data=request.body,
                headers=dict(request.headers),
            ) as response:  # fmt: skip
                await response.read()
            latencies.append((time.perf_counter() - began) * 1000)
            code = str(response.status)
            answers[code] = answers.get(code, 0) + 1

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(one_connection(session) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return _result(latencies, elapsed, answers)


def _result(latencies: list[float], elapsed: float, answers: dict[str, int]) -> Result:
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return Result(len(latencies) / elapsed, statistics.median(latencies), p99, answers)
