"""The simulated phone's page in a real browser: a person trying the demo answers a
text, and an email too, by text from the patient's mobile."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from carebell.simulator.server import SimConfig, start_in_thread

MAILBOX = "ana.ashford12@example.org"
MOBILE = "+12125550123"


@pytest.fixture
def sim():
    # carebell is not running: the replies' webhook finds no one, the sim keeps them.
    handle = start_in_thread(
        SimConfig(port=0, auth_token="page-test", inbound_url="http://127.0.0.1:9/inbound")
    )
    yield handle
    handle.stop()


def api(handle, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        handle.url + path, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def email(handle, subject: str, body: str) -> None:
    message = {"to": MAILBOX, "sender": "clinic@example.org", "subject": subject, "body": body}
    api(handle, "/sim/api/emails", message)


def replies(handle) -> list[tuple[str, str]]:
    found = api(handle, "/sim/api/messages?kind=inbound")["messages"]
    return [(m["sender"], m["body"]) for m in found]


def wait_for_reply(handle, expected: tuple[str, str]) -> None:
    deadline = time.monotonic() + 10
    while expected not in replies(handle) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert expected in replies(handle)


def test_an_email_thread_is_answered_by_text_from_the_patients_mobile(page, sim):
    email(sim, "Your visit", "Reply C to confirm")
    api(sim, "/sim/api/reply", {"from": MOBILE, "body": "HELP"})  # a phone the sim has seen
    page.goto(sim.url + "/")
    page.click(f"nav button:has-text('{MAILBOX}')")
    assert "no phone number" in page.inner_text("#reply-note")
    assert page.is_visible("#from") and page.is_visible("#body")
    assert MOBILE in page.eval_on_selector_all("#phones option", "os => os.map(o => o.value)")
    page.fill("#from", MOBILE)
    page.fill("#body", "C")
    page.click("#reply button[type=submit]")
    wait_for_reply(sim, (MOBILE, "C"))
    assert f"Sent by text from {MOBILE}" in page.inner_text("#reply-note")


def test_an_email_thread_remembers_the_mobile_it_was_answered_from(page, sim):
    email(sim, "Ready", "Your prescription is ready")
    page.goto(sim.url + "/")
    page.click(f"nav button:has-text('{MAILBOX}')")
    page.fill("#from", MOBILE)
    page.fill("#body", "X")
    page.click("#reply button[type=submit]")
    wait_for_reply(sim, (MOBILE, "X"))
    page.reload()
    page.click(f"nav button:has-text('{MAILBOX}')")
    assert page.input_value("#from") == MOBILE


def test_a_text_thread_is_answered_from_its_own_number_without_asking(page, sim):
    api(sim, "/sim/api/reply", {"from": MOBILE, "body": "HELP"})
    page.goto(sim.url + "/")
    page.click(f"nav button:has-text('{MOBILE}')")
    assert not page.is_visible("#from")
    assert page.inner_text("#reply-note") == ""
    page.fill("#body", "STOP")
    page.click("#reply button[type=submit]")
    wait_for_reply(sim, (MOBILE, "STOP"))
