"""SMTP against a real SMTP server on loopback (aiosmtpd), not a mock."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket

import pytest
from aiosmtpd.controller import Controller

from carebell.providers.base import OutgoingMessage
from carebell.providers.smtp import SmtpProvider


class Mailbox:
    """An aiosmtpd handler that keeps what it receives and refuses chosen recipients."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], email.message.EmailMessage]] = []
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("bounce@"):
            return "550 5.1.1 no such user"
        if address.startswith("later@"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mailbox(settings):
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield box
    controller.stop()


def message(attempt_id: int, to: str = "ana@example.org", **overrides) -> OutgoingMessage:
    fields = dict(
        attempt_id=attempt_id,
        channel="email",
        to=to,
        sender="Oak Clinic <reminders@oak.example>",
        subject="Your appointment tomorrow",
        body="Plain text: see you tomorrow at 9:00.",
        html="<p>See you <b>tomorrow</b> at 9:00.</p>",
        headers={"unsubscribe_url": "https://carebell.example/u/tok123"},
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def send(*messages):
    return asyncio.run(SmtpProvider().send_batch(None, list(messages)))


def test_it_delivers_text_and_html_with_one_click_unsubscribe_headers(mailbox, settings):
    settings.EMAIL_UNSUBSCRIBE_MAILTO = "unsubscribe@oak.example"
    (result,) = send(message(1))
    ((mail_from, rcpt_tos, received),) = mailbox.received
    assert (mail_from, rcpt_tos) == ("reminders@oak.example", ["ana@example.org"])
    assert received["Subject"] == "Your appointment tomorrow"
    assert received["List-Unsubscribe"] == (
        "<mailto:unsubscribe@oak.example>, <https://carebell.example/u/tok123>"
    )
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "unsubscribe_url" not in received
    assert received.get_content_type() == "multipart/alternative"
    plain = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    assert "see you tomorrow" in plain and "<b>tomorrow</b>" in html
    assert result.accepted and result.status == "sent"
    assert result.provider_message_id == received["Message-ID"]
    assert result.provider_message_id.endswith("@oak.example>")


def test_a_message_without_an_unsubscribe_link_has_no_unsubscribe_headers(mailbox):
    send(message(1, headers={}, html=""))
    (_, _, received) = mailbox.received[0]
    assert received["List-Unsubscribe"] is None
    assert received.get_content_type() == "text/plain"


def test_one_connection_serves_the_whole_batch(mailbox):
    results = send(*[message(i, to=f"p{i}@example.org") for i in range(5)])
    assert [r.accepted for r in results] == [True] * 5
    assert len(mailbox.received) == 5
    assert mailbox.sessions == 1
    assert len({r.provider_message_id for r in results}) == 5


def test_a_refused_recipient_is_permanent_and_a_deferral_transient_without_losing_others(
    mailbox,
):
    results = send(
        message(1, to="bounce@example.org"),
        message(2, to="later@example.org"),
        message(3, to="ok@example.org"),
    )
    assert [(r.accepted, r.permanent, r.error_code) for r in results] == [
        (False, True, "smtp_550"),
        (False, False, "smtp_451"),
        (True, False, ""),
    ]
    assert [rcpt for _, rcpt, _ in mailbox.received] == [["ok@example.org"]]


def test_an_unreachable_server_is_a_transient_failure(settings):
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    (result,) = send(message(1))
    assert (result.accepted, result.permanent, result.error_code) == (False, False, "network")
