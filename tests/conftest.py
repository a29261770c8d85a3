"""Shared personas: `site` and `other_org_site`, so every view and route can check
tenant isolation against a second organization."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest
import time_machine
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread

from tests import factories


class _OneRequestAtATime(ThreadedWSGIServer):
    """The live server, answering one request at a time when its threads share a
    connection. On SQLite the suite's database is in memory, so every request thread
    of the live server uses the same connection (Django's connections_override), and
    a page's parallel requests (a stylesheet and a script behind the sign-in) would
    interleave their queries on it: now and then one of them read nothing and was
    answered with the sign-in page."""

    def set_app(self, application):
        if not self.connections_override:
            return super().set_app(application)
        lock = threading.Lock()

        def serialized(environ, start_response):
            with lock:  # the whole answer, streamed bodies included, inside the lock
                return list(application(environ, start_response))

        return super().set_app(serialized)


LiveServerThread.server_class = _OneRequestAtATime


def pytest_collection_modifyitems(config, items):
    # The PostgreSQL-only tests must run whenever the suite runs on PostgreSQL;
    # on SQLite `make test` deselects them explicitly (-m "not postgres_only").
    if "postgres" in os.environ.get("CAREBELL_DATABASE_URL", ""):
        return
    for item in items:
        if item.get_closest_marker("postgres_only") and "not postgres_only" not in (
            config.getoption("-m") or ""
        ):
            item.add_marker(pytest.mark.skip(reason="needs CAREBELL_DATABASE_URL=postgres://…"))


# Every test runs on the same calendar, whatever day the suite runs: a Wednesday
# afternoon in UTC (mid-morning in New York), the instant the engine's fixtures plan at.
# The clock ticks from there, so timeouts and leases still pass. Tests that hand work
# to another process (which keeps the real clock) are marked `real_clock` and must
# hold on any day by themselves.
FROZEN_AT = dt.datetime(2026, 11, 25, 15, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _fixed_calendar(request):
    if request.node.get_closest_marker("real_clock"):
        yield
        return
    with time_machine.travel(FROZEN_AT, tick=True):
        yield


@pytest.fixture
def org(db):
    return factories.make_org(name="Maple Pediatrics", slug="maple")


@pytest.fixture
def site(org):
    return factories.make_site(org, name="Maple Pediatrics Downtown")


@pytest.fixture
def pharmacy(org):
    return factories.make_site(org, name="Maple Pharmacy", kind="pharmacy", phone="+12025550111")


@pytest.fixture
def other_org_site(db):
    return factories.make_site(factories.make_org(name="Elsewhere Clinic", slug="elsewhere"))
