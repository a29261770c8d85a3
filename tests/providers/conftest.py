"""Shared seams for provider tests: a loopback HTTP server that records what it was
sent, and the Twilio vectors read from ../shared/vectors as they are."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors" / "twilio"


def load_vectors(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: list[tuple[str, str]]


@dataclass
class RecordingServer:
    """A loopback aiohttp server: records every request and answers with `reply`
    (a function of the Recorded request returning (status, json body, headers))."""

    reply: Callable[[Recorded], tuple[int, Any, dict[str, str]]]
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> RecordingServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        form = list((await request.post()).items()) if request.can_read_body else []
        recorded = Recorded(
            request.method, request.path, dict(request.query), dict(request.headers), form
        )
        self.requests.append(recorded)
        status, body, headers = self.reply(recorded)
        return web.json_response(body, status=status, headers=headers)


@pytest.fixture
def twilio_settings(settings):
    settings.TWILIO_ACCOUNT_SID = "AC" + "a" * 32
    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.TWILIO_FROM = "+15005550006"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_MESSAGES_PER_SECOND = 10.0
    settings.BASE_URL = "https://carebell.example"
    return settings
