"""A real HTTP receiver on loopback for the events worker to call, and endpoints."""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from carebell.outbound import endpoints
from carebell.outbound.delivery import EventDeliverer
from tests.web.conftest import browser, page  # noqa: F401 (Chromium, as the staff tests use it)
from tests.web.staff.conftest import (  # noqa: F401 (the staff personas, for the pages)
    admin_client_,
    fast_passwords,
    outsider,
    staff_of,
)


class Receiver:
    """Records every POST (headers and body) and answers from a script of
    (status, headers) pairs, then 204 once the script is spent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict, bytes]] = []
        self.script: deque[tuple[int, dict]] = deque()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    status, headers = receiver.script.popleft() if receiver.script else (204, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def answer(self, *replies: tuple[int, dict] | int) -> None:
        for reply in replies:
            self.script.append(reply if isinstance(reply, tuple) else (reply, {}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    served = Receiver()
    yield served
    served.close()


@pytest.fixture
def allow_private(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def endpoint(site, receiver, allow_private):
    """An endpoint of `site` at the loopback receiver, subscribed to every event."""
    from carebell.outbound.models import EventType

    made, _secret = endpoints.create_endpoint(
        site, url=receiver.url, event_types=EventType.values, by=None
    )
    return made


@pytest.fixture
def deliverer():
    worker = EventDeliverer(timeout_seconds=2.0)
    yield worker
    worker.close()
