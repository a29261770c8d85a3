"""A simulated phone and mailbox: a loopback HTTP service that stands in for Twilio
and an email service, for the demo, tests and benchmarks.

It speaks the same REST shape as Twilio's Messages API (so `TwilioSmsProvider`
pointed at it works unchanged), plus email and call endpoints of its own. It keeps
every message in memory (bounded), honours idempotency keys (same key → same sid,
no second record), injects faults on demand, posts status callbacks signed like
Twilio, and shows a browser page where a person reads and answers as the patient.

    python -m carebell.simulator.server --port 8025

Control: GET/POST /sim/api/faults, POST /sim/api/reset, GET /sim/api/messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import random
import secrets
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from importlib import resources
from typing import Any

import aiohttp
from aiohttp import web

from carebell import config
from carebell.config import env_str
from carebell.providers.twilio.signature import SIGNATURE_HEADER, sign

log = logging.getLogger("carebell.simulator.providers")

API = "/2010-04-01/Accounts/{account}"
#: The account sid carebell's `sim` provider uses (any other works too).
SIM_ACCOUNT_SID = "AC" + "0" * 32


def random_token() -> str:
    """A sim started without a token signs with a secret nobody else knows."""
    return secrets.token_urlsafe(32)


@dataclass
class Faults:
    """Fault injection. Rates are shares of the new requests (0..1, one draw per
    request, so they add up): `throttle_rate` answers 429 with Retry-After,
    `failure_rate` 500, `error_rate` a permanent `error_code`; none of these keeps
    the message. `timeout_rate` and `drop_rate` keep it (and deliver it, callbacks
    included) and then lose the answer: a timeout stalls it `stall_seconds`, past the
    client's timeout; a drop closes the connection unanswered. `numbers` makes given
    recipients always fail with a Twilio error code. A resend under a key already
    kept is answered with the kept message, faults aside."""

    latency_ms: float = 0.0
    failure_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after: float = 1.0
    error_rate: float = 0.0
    error_code: int = 21211
    timeout_rate: float = 0.0
    drop_rate: float = 0.0
    stall_seconds: float = 35.0
    numbers: dict[str, int] = field(default_factory=dict)

    def update(self, values: dict[str, Any]) -> None:
        for item in dataclasses.fields(self):
            if item.name in values:
                setattr(self, item.name, type(getattr(self, item.name))(values[item.name]))


@dataclass
class SimConfig:
    host: str = "127.0.0.1"
    port: int = 8025
    auth_token: str = field(default_factory=random_token)
    inbound_url: str = "http://127.0.0.1:8000/hooks/sim/inbound"
    default_number: str = "+15005550006"
    callbacks: bool = True
    callback_delay: float = 0.2
    max_records: int = 10_000
    max_keys: int = 1_000_000
    seed: int | None = None
    faults: Faults = field(default_factory=Faults)


@dataclass
class Record:
    sid: str
    kind: str  # sms | email | call | inbound | keypress
    to: str
    sender: str
    body: str
    status: str = "queued"
    subject: str = ""
    html: str = ""
    language: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    idempotency_key: str = ""
    status_callback: str = ""
    gather_url: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    error_code: int | None = None

    @property
    def address(self) -> str:
        """The patient's side of the conversation."""
        return self.sender if self.kind in ("inbound", "keypress") else self.to


class SimState:
    """Everything the sim remembers. Records are bounded (oldest dropped); the
    idempotency index keeps sids for up to `max_keys` keys."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.random = random.Random(config.seed)
        self.reset()

    def reset(self) -> None:
        self.records: deque[Record] = deque(maxlen=self.config.max_records)
        self.by_sid: dict[str, Record] = {}
        self.by_key: OrderedDict[str, str] = OrderedDict()
        self.duplicates: dict[str, int] = {}
        self.counts: dict[str, int] = {}

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def known(self, key: str) -> Record | None:
        sid = self.by_key.get(key) if key else None
        if sid is None:
            return None
        self.duplicates[key] = self.duplicates.get(key, 0) + 1
        self.count("duplicates")
        return self.by_sid.get(sid) or Record(sid=sid, kind="expired", to="", sender="", body="")

    def add(self, record: Record) -> Record:
        if len(self.records) == self.records.maxlen:
            self.by_sid.pop(self.records[0].sid, None)
        self.records.append(record)
        self.by_sid[record.sid] = record
        if record.idempotency_key:
            self.by_key[record.idempotency_key] = record.sid
            while len(self.by_key) > self.config.max_keys:
                self.by_key.popitem(last=False)
        self.count(record.kind)
        return record

    def fault_for(self, to: str) -> web.Response | str | None:
        """A fault response for this request; "timeout" or "drop" to keep the message
        and lose the answer; None to accept it."""
        faults = self.config.faults
        if to in faults.numbers:
            return self._twilio_error(400, faults.numbers[to], "simulated error")
        roll = self.random.random()
        for rate, fault in (
            (faults.throttle_rate, "throttle"),
            (faults.failure_rate, "failure"),
            (faults.error_rate, "error"),
            (faults.timeout_rate, "timeout"),
            (faults.drop_rate, "drop"),
        ):
            if roll < rate:
                return self._fault(fault)
            roll -= rate
        return None

    def _fault(self, fault: str) -> web.Response | str:
        faults = self.config.faults
        if fault == "throttle":
            headers = {"Retry-After": f"{faults.retry_after:g}"}
            return self._twilio_error(429, 20429, "Too Many Requests", headers)
        if fault == "failure":
            return self._twilio_error(500, 20500, "Internal Server Error")
        if fault == "error":
            return self._twilio_error(400, faults.error_code, "simulated error")
        self.count(f"fault_{fault}")
        return fault

    def _twilio_error(self, status: int, code: int, text: str, headers=None) -> web.Response:
        self.count(f"fault_{code}")
        body = {"code": code, "message": text, "status": status, "more_info": ""}
        return web.json_response(body, status=status, headers=headers)

    def listing(self, address: str = "", kind: str = "") -> dict[str, Any]:
        chosen = [
            r
            for r in self.records
            if (not address or r.address == address) and (not kind or r.kind == kind)
        ]
        return {
            "messages": [dataclasses.asdict(r) for r in chosen],
            "counts": {**self.counts, "records": len(self.records), "keys": len(self.by_key)},
            "duplicates": self.duplicates,
        }


def new_sid(prefix: str) -> str:
    """A Twilio-shaped sid: the prefix and 32 hex digits (random, like uuid4's)."""
    return prefix + os.urandom(16).hex()


class _HttpDate:
    """The current time as an RFC 2822 date, written once per second: the sim's
    handler is part of what the dispatch benchmark measures."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._text = format_datetime(datetime.fromtimestamp(second, UTC), usegmt=True)
        return self._text


_http_date = _HttpDate()


def twilio_resource(record: Record, account: str) -> dict[str, Any]:
    """The Message resource as Twilio returns it (the fields carebell reads and a few
    more for realism)."""
    now = _http_date.now()
    created = format_datetime(datetime.fromisoformat(record.created_at), usegmt=True)
    return {
        "sid": record.sid,
        "account_sid": account,
        "api_version": "2010-04-01",
        "to": record.to,
        "from": record.sender,
        "body": record.body,
        "status": record.status,
        "direction": "outbound-api",
        "error_code": record.error_code,
        "error_message": None,
        "num_segments": "1",
        "num_media": "0",
        "date_created": created,
        "date_updated": now,
        "uri": f"{API.format(account=account)}/Messages/{record.sid}.json",
    }


_RESOURCE_JSON = (
    '{{"sid": {sid}, "account_sid": {account}, "api_version": "2010-04-01", "to": {to}, '
    '"from": {sender}, "body": {body}, "status": {status}, "direction": "outbound-api", '
    '"error_code": {error_code}, "error_message": null, "num_segments": "1", '
    '"num_media": "0", "date_created": {now}, "date_updated": {now}, "uri": {uri}}}'
)
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def resource_response(record: Record, account: str, status: int = 200) -> web.Response:
    """`web.json_response(twilio_resource(record, account))`, the same bytes written
    from a template: the sim answers every send with it, and its CPU is measured."""
    dumps = json.dumps
    body = _RESOURCE_JSON.format(
        sid=dumps(record.sid),
        account=dumps(account),
        to=dumps(record.to),
        sender=dumps(record.sender),
        body=dumps(record.body),
        status=dumps(record.status),
        error_code=dumps(record.error_code),
        now=dumps(_http_date.now()),
        uri=dumps(f"{API.format(account=account)}/Messages/{record.sid}.json"),
    )
    return web.Response(body=body.encode(), status=status, headers=_JSON_HEADERS)


class SimServer:
    """The aiohttp application and its callback client."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.state = SimState(config)
        self.client: aiohttp.ClientSession | None = None
        self.tasks: set[asyncio.Task] = set()

    def app(self) -> web.Application:
        app = web.Application()
        app.on_startup.append(self._start_client)
        app.on_cleanup.append(self._stop_client)
        account = API.format(account="{account}")
        # carebell's own account as a plain path first: found by one dict lookup,
        # where the pattern below is a regular-expression match per request.
        app.router.add_post(
            f"{API.format(account=SIM_ACCOUNT_SID)}/Messages.json", self.create_message
        )
        app.router.add_post(f"{account}/Messages.json", self.create_message)
        app.router.add_get(f"{account}/Messages.json", self.list_messages_by_key)
        app.router.add_get(f"{account}/Messages/{{sid}}.json", self.fetch_message)
        app.router.add_post("/sim/api/emails", self.create_email)
        app.router.add_post("/sim/api/calls", self.create_call)
        app.router.add_get("/sim/api/messages", self.listing)
        app.router.add_get("/sim/api/messages/{sid}", self.fetch_any)
        app.router.add_get("/sim/api/faults", self.get_faults)
        app.router.add_post("/sim/api/faults", self.set_faults)
        app.router.add_post("/sim/api/reset", self.reset)
        app.router.add_post("/sim/api/reply", self.reply)
        app.router.add_post("/sim/api/press", self.press)
        app.router.add_get("/", self.page)
        return app

    async def _start_client(self, _app: web.Application) -> None:
        self.client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def _stop_client(self, _app: web.Application) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.client:
            await self.client.close()

    # --- Twilio-shaped Messages API ------------------------------------------------

    async def create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        key = request.headers.get("I-Twilio-Idempotency-Token", "")
        account = request.match_info.get("account", SIM_ACCOUNT_SID)
        if (existing := self.state.known(key)) is not None:
            return resource_response(existing, account, status=201)
        await self._latency()
        to = form.get("To", "")
        fault = self.state.fault_for(to)
        if isinstance(fault, web.Response):
            return fault
        record = self.state.add(
            Record(
                sid=new_sid("SM"),
                kind="sms",
                to=to,
                sender=form.get("From") or form.get("MessagingServiceSid", ""),
                body=form.get("Body", ""),
                idempotency_key=key,
                status_callback=form.get("StatusCallback", ""),
            )
        )
        self._schedule_callbacks(record, account, "MessageSid", "MessageStatus")
        if fault is not None:
            return await self._lose_answer(request, fault, resource_response(record, account, 201))
        return resource_response(record, account, status=201)

    async def fetch_message(self, request: web.Request) -> web.Response:
        record = self.state.by_sid.get(request.match_info["sid"])
        if record is None:
            body = {"code": 20404, "message": "The requested resource was not found"}
            return web.json_response({**body, "status": 404}, status=404)
        return web.json_response(twilio_resource(record, request.match_info["account"]))

    async def list_messages_by_key(self, request: web.Request) -> web.Response:
        """Twilio's Messages list filtered by `To` and `DateSent>` (a GMT date, the
        day of creation here), newest first, one page; and a sim extension:
        `?IdempotencyKey=k` finds what an earlier attempt sent."""
        query = request.query
        if "IdempotencyKey" in query:
            sid = self.state.by_key.get(query["IdempotencyKey"])
            records = [self.state.by_sid[sid]] if sid in self.state.by_sid else []
        else:
            to, day = query.get("To", ""), query.get("DateSent>", "")
            records = [
                r
                for r in reversed(self.state.records)
                if r.kind == "sms" and (not to or r.to == to) and r.created_at[:10] >= day
            ]
        size = int(query.get("PageSize", "50") or 50)
        account = request.match_info["account"]
        page = [twilio_resource(r, account) for r in records[:size]]
        more = f"{request.path}?Page=1" if len(records) > size else None
        return web.json_response({"messages": page, "next_page_uri": more, "page_size": size})

    # --- email and calls (the sim's own shape) ------------------------------------

    async def create_email(self, request: web.Request) -> web.Response:
        data = await request.json()
        return await self._create_own(request, data, "email", "EM")

    async def create_call(self, request: web.Request) -> web.Response:
        data = await request.json()
        return await self._create_own(request, data, "call", "CA")

    async def _create_own(
        self, request: web.Request, data: dict[str, Any], kind: str, prefix: str
    ) -> web.Response:
        key = data.get("idempotency_key", "")
        if (existing := self.state.known(key)) is not None:
            return web.json_response(_own_resource(existing), status=201)
        await self._latency()
        fault = self.state.fault_for(data.get("to", ""))
        if isinstance(fault, web.Response):
            return fault
        fields = {f.name for f in dataclasses.fields(Record)} - {"sid", "kind", "status"}
        values = {k: v for k, v in data.items() if k in fields}
        values.update({name: str(data.get(name, "")) for name in ("to", "sender", "body")})
        record = self.state.add(Record(sid=new_sid(prefix), kind=kind, **values))
        if kind == "call":
            self._schedule_callbacks(record, "sim", "CallSid", "CallStatus")
        else:
            self._schedule_callbacks(record, "sim", "MessageSid", "MessageStatus")
        answer = web.json_response(_own_resource(record), status=201)
        if fault is not None:
            return await self._lose_answer(request, fault, answer)
        return answer

    async def fetch_any(self, request: web.Request) -> web.Response:
        record = self.state.by_sid.get(request.match_info["sid"])
        if record is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.json_response(_own_resource(record))

    # --- control -------------------------------------------------------------------

    async def listing(self, request: web.Request) -> web.Response:
        query = request.query
        key = query.get("idempotency_key", "")
        if key:
            sid = self.state.by_key.get(key)
            records = [self.state.by_sid[sid]] if sid in self.state.by_sid else []
            return web.json_response({"messages": [dataclasses.asdict(r) for r in records]})
        return web.json_response(self.state.listing(query.get("to", ""), query.get("kind", "")))

    async def get_faults(self, _request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.config.faults))

    async def set_faults(self, request: web.Request) -> web.Response:
        values = await request.json()
        if values.get("clear"):
            self.config.faults = Faults()
        self.config.faults.update(values)
        if "callbacks" in values:
            self.config.callbacks = bool(values["callbacks"])
        return web.json_response(dataclasses.asdict(self.config.faults))

    async def reset(self, _request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"ok": True})

    # --- the patient's side ----------------------------------------------------------

    async def reply(self, request: web.Request) -> web.Response:
        """The patient answers by SMS: POST Twilio's inbound shape to carebell."""
        data = await request.json()
        patient, body = data["from"], data.get("body", "")
        ours = data.get("to") or self._last_sender(patient) or self.config.default_number
        sid = new_sid("SM")
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "AccountSid": "ACsim",
            "From": patient,
            "To": ours,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        status = await self._post_signed(self.config.inbound_url, form)
        self.state.add(Record(sid=sid, kind="inbound", to=ours, sender=patient, body=body))
        return web.json_response({"sid": sid, "webhook_status": status})

    async def press(self, request: web.Request) -> web.Response:
        """The patient presses a key on a call: POST Twilio's Gather shape."""
        data = await request.json()
        call = self.state.by_sid.get(data.get("call_sid", ""))
        if call is None or not call.gather_url:
            return web.json_response({"error": "no such call waiting for a key"}, status=404)
        digits = str(data.get("digits", ""))
        form = {"CallSid": call.sid, "AccountSid": "ACsim", "From": call.sender}
        form.update({"To": call.to, "Digits": digits, "CallStatus": "in-progress"})
        status = await self._post_signed(call.gather_url, form)
        self.state.add(
            Record(sid=new_sid("KP"), kind="keypress", to=call.sender, sender=call.to, body=digits)
        )
        return web.json_response({"webhook_status": status})

    async def page(self, _request: web.Request) -> web.Response:
        html = resources.files("carebell.simulator").joinpath("page.html").read_text()
        return web.Response(text=html, content_type="text/html")

    # --- helpers -------------------------------------------------------------------------

    def _last_sender(self, patient: str) -> str:
        for record in reversed(self.state.records):
            if record.kind == "sms" and record.to == patient:
                return record.sender
        return ""

    async def _lose_answer(
        self, request: web.Request, fault: str, answer: web.Response
    ) -> web.Response:
        """The message is kept (and delivered); its answer never reaches the client:
        stalled past its timeout, or the connection closed unanswered."""
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            return answer
        await asyncio.sleep(self.config.faults.stall_seconds)
        return answer

    async def _latency(self) -> None:
        if self.config.faults.latency_ms:
            await asyncio.sleep(self.config.faults.latency_ms / 1000)

    async def _post_signed(self, url: str, form: dict[str, str]) -> int:
        assert self.client is not None
        headers = {SIGNATURE_HEADER: sign(self.config.auth_token, url, form)}
        try:
            async with self.client.post(url, data=form, headers=headers) as response:
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            self.state.count("webhook_errors")
            return 0

    def _schedule_callbacks(self, record: Record, account: str, id_field: str, status_field: str):
        if not (self.config.callbacks and record.status_callback):
            return
        task = asyncio.create_task(self._callbacks(record, account, id_field, status_field))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _callbacks(self, record: Record, account: str, id_field: str, status_field: str):
        # Twilio sends no callback for the initial status, then sent → delivered.
        steps = ("completed",) if record.kind == "call" else ("sent", "delivered")
        for status in steps:
            await asyncio.sleep(self.config.callback_delay)
            record.status = status
            form = {id_field: record.sid, status_field: status, "AccountSid": account}
            form.update({"From": record.sender, "To": record.to, "ApiVersion": "2010-04-01"})
            if await self._post_signed(record.status_callback, form):
                self.state.count("callbacks")


def _own_resource(record: Record) -> dict[str, Any]:
    return {"sid": record.sid, "status": record.status, "kind": record.kind, "to": record.to}


# --- running it ------------------------------------------------------------------------------


@dataclass
class SimHandle:
    """A sim running in a background thread (for the demo and tests)."""

    server: SimServer
    url: str
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    runner: web.AppRunner

    def stop(self) -> None:
        future = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
        with contextlib.suppress(Exception):
            future.result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def start_in_thread(config: SimConfig | None = None) -> SimHandle:
    """Start the sim on `config.host:config.port` (0 = any free port) in a daemon
    thread and return once it accepts connections."""
    config = config or SimConfig()
    server = SimServer(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="carebell-sim", daemon=True)
    thread.start()
    runner = web.AppRunner(server.app(), access_log=None)
    url = asyncio.run_coroutine_threadsafe(_serve(runner, config), loop).result(timeout=10)
    return SimHandle(server=server, url=url, loop=loop, thread=thread, runner=runner)


async def _serve(runner: web.AppRunner, config: SimConfig) -> str:
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}"


def config_from_args(argv: list[str] | None = None) -> SimConfig:
    parser = argparse.ArgumentParser(prog="python -m carebell.simulator.server")
    base_url = env_str("BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--inbound-url", default=f"{base_url}/hooks/sim/inbound")
    parser.add_argument("--auth-token", default=default_token())
    parser.add_argument("--no-callbacks", action="store_true", help="for benchmarks")
    parser.add_argument("--max-records", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    parser.add_argument("--throttle-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=1.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="permanent errors")
    parser.add_argument("--timeout-rate", type=float, default=0.0, help="kept, answer stalled")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="kept, connection closed")
    parser.add_argument("--stall-seconds", type=float, default=35.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    faults = Faults(
        latency_ms=args.latency_ms,
        failure_rate=args.failure_rate,
        throttle_rate=args.throttle_rate,
        retry_after=args.retry_after,
        error_rate=args.error_rate,
        timeout_rate=args.timeout_rate,
        drop_rate=args.drop_rate,
        stall_seconds=args.stall_seconds,
    )
    return SimConfig(
        host=args.host,
        port=args.port,
        auth_token=args.auth_token,
        inbound_url=args.inbound_url,
        callbacks=not args.no_callbacks,
        max_records=args.max_records,
        seed=args.seed,
        faults=faults,
    )


def default_token() -> str:
    """The secret the sim signs with: CAREBELL_SIM_AUTH_TOKEN, else the one generated
    into the data dir, which a development carebell on the same data dir also reads."""
    return env_str("SIM_AUTH_TOKEN") or config.sim_token(True, True, config.data_dir())


def main(argv: list[str] | None = None) -> None:
    config = config_from_args(argv)
    logging.basicConfig(level=logging.INFO)
    web.run_app(SimServer(config).app(), host=config.host, port=config.port, access_log=None)


if __name__ == "__main__":
    main()
