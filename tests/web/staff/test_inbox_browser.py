"""The inbox in a real browser (Debian's Chromium): a mother answers a text on the
simulated phone, a front-desk person sees it arrive in the inbox without reloading,
answers with a quick response and watches the reply delivered. The screens are
saved under var/screenshots/ for a person to look at."""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from carebell import outbox
from carebell.core.vocab import Kind, OutboxStatus
from carebell.dispatch.dispatcher import Dispatcher
from carebell.inbox.models import QuickResponse
from carebell.messaging.models import OutboxMessage
from carebell.simulator.providers import sim_token
from carebell.simulator.server import SimConfig, start_in_thread
from carebell.sites.roles import FRONT_DESK
from tests import factories
from tests.browser import RECORD_VIOLATIONS, shoot, sign_in
from tests.inbox.conftest import PHONE, make_family

pytestmark = pytest.mark.django_db(transaction=True)


def send_in_a_thread() -> None:
    """One dispatcher batch off the main thread, where Playwright's event loop runs."""

    def work() -> None:
        dispatcher = Dispatcher()
        try:
            dispatcher.process_batch()
        finally:
            dispatcher.close()
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)


def reply_status() -> str:
    """The reply's status; on SQLite a read that meets the live server's write lock is
    a "not yet", not an answer."""
    try:
        found = OutboxMessage.objects.filter(kind=Kind.INBOX_REPLY).values_list("status", flat=True)
        return found.first() or ""
    except OperationalError:
        return ""


def test_front_desk_sees_a_text_arrive_and_answers_with_a_quick_response(
    page, browser, live_server, site, settings
):
    sim = start_in_thread(
        SimConfig(
            port=0, auth_token=sim_token(), inbound_url=f"{live_server.url}/hooks/sim/inbound"
        )
    )
    settings.BASE_URL, settings.SMS_PROVIDER, settings.SIM_URL = live_server.url, "sim", sim.url
    phone = browser.new_context().new_page()
    phone.set_default_timeout(15_000)
    try:
        make_family(site)
        factories.make_staff(site, FRONT_DESK, username="fran")
        QuickResponse.objects.create(
            site=site,
            name="See you then",
            body="Thank you, #PATIENTFIRSTNAME# is expected at 4 pm.",
        )
        visit = "Maple Pediatrics: Lena's visit is on Tuesday at 3:30 PM."
        outbox.queue_reply(site, PHONE, Kind.INBOX_REPLY, now=timezone.now(), body=visit)
        send_in_a_thread()

        page.add_init_script(RECORD_VIOLATIONS)
        sign_in(page, f"{live_server.url}/staff/", "fran")
        page.get_by_role("link", name=re.compile("^Inbox")).click()
        page.wait_for_selector("text=No open conversation")

        phone.goto(sim.url)
        phone.get_by_role("button", name=re.compile(PHONE[2:])).click()
        phone.wait_for_selector("text=visit is on Tuesday")
        phone.fill("#body", "Could we come at 4 instead?")
        phone.click("#reply button[type=submit]")

        # No reload: the list's poll brings the conversation in.
        page.wait_for_selector("text=Could we come at 4 instead?", timeout=20_000)
        assert page.locator(".main-nav .count").inner_text() == "1"
        shoot(page, "inbox-list")
        page.get_by_role("link", name=PHONE).click()
        page.wait_for_selector("text=Lena Ortiz")
        page.select_option("#id_quick_response", label="See you then")
        assert "#PATIENTFIRSTNAME#" in page.input_value("#id_body")
        page.click("#reply button[type=submit]")
        page.wait_for_selector("text=Reply queued to go now.")
        page.wait_for_selector(".entry-reply >> text=Lena is expected at 4 pm")

        send_in_a_thread()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and reply_status() != OutboxStatus.DELIVERED:
            time.sleep(0.3)
        assert reply_status() == OutboxStatus.DELIVERED
        page.wait_for_selector(".entry-reply .status-delivered", timeout=20_000)
        phone.wait_for_selector("text=Lena is expected at 4 pm")
        shoot(page, "inbox-conversation")
        assert page.evaluate("window.__violations") == []
    finally:
        phone.context.close()
        sim.stop()


def test_an_administrator_writes_a_quick_response_and_reviews_a_possible_opt_out(
    page, live_server, site, client, settings
):
    from carebell.people.models import ContactPoint
    from carebell.sites.roles import SYSTEM_ADMINISTRATOR
    from tests.inbox.conftest import text

    make_family(site)
    factories.make_staff(site, SYSTEM_ADMINISTRATOR, username="dana")
    settings.BASE_URL = "http://testserver"  # what the test client's signature covers
    assert text(client, "Por favor no más mensajes").status_code == 200
    page.add_init_script(RECORD_VIOLATIONS)
    sign_in(page, f"{live_server.url}/staff/", "dana")
    page.goto(f"{live_server.url}/staff/quick-responses/new/")
    page.fill("#id_name", "Code")
    page.fill("#id_body", "Your code is #CODE#")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=not available in inbox_reply templates")
    shoot(page, "inbox-quick-response-error")
    page.fill("#id_body", "Hello #PATIENTFIRSTNAME#, please call #SITEPHONE#.")
    page.click("main button[type=submit]")
    page.wait_for_selector("text=Quick response “Code” saved.")
    page.goto(f"{live_server.url}/staff/inbox/reviews/")
    page.wait_for_selector("text=Por favor no más mensajes")
    shoot(page, "inbox-reviews")
    page.click("button[value=opted_out]")
    page.wait_for_selector("text=The number is opted out of texts from this site.")
    assert ContactPoint.objects.get(value=PHONE).opted_out_sms is True
    assert page.evaluate("window.__violations") == []


def test_a_thread_reads_in_words_kinds_statuses_and_why_a_reply_was_blocked(
    page, live_server, site, client, settings
):
    from carebell.inbox import replies
    from carebell.inbox.models import Conversation
    from carebell.people.models import ContactPoint
    from tests.inbox.conftest import text

    make_family(site)
    desk = factories.make_staff(site, FRONT_DESK, username="fran")
    settings.BASE_URL = "http://testserver"  # what the test client's signature covers
    assert text(client, "HELP").status_code == 200  # answered by a keyword reply
    assert text(client, "please stop texting me\nthank you").status_code == 200
    ContactPoint.objects.filter(value=PHONE).update(opted_out_sms=True)
    conversation = Conversation.objects.get(site=site)
    replies.send_reply(conversation, body="Sorry to hear that, #PATIENTFIRSTNAME#.", by=desk)
    page.add_init_script(RECORD_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page, f"{live_server.url}/staff/", "fran")
    page.goto(f"{live_server.url}/staff/inbox/{conversation.pk}/")
    thread = page.locator("ol.thread")
    thread.wait_for()
    words = thread.inner_text()
    assert "Automatic answer to a keyword · Text message (SMS)" in words
    assert "Possible opt-out" in words
    assert "Blocked" in words and "The number opted out of text messages." in words
    assert "please stop texting me\nthank you" in words  # the line break shows
    for code in ("keyword reply", "· sms", "opted_out"):
        assert code not in words, code
    shoot(page, "inbox-conversation-words")
    assert page.evaluate("window.__violations") == []
