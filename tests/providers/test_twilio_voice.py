from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET

import pytest

from carebell.providers.base import OutgoingMessage
from carebell.providers.twilio.sms import TwilioConfig
from carebell.providers.twilio.voice import (
    TwilioVoiceProvider,
    VoiceScript,
    answer_twiml,
    parse_keypress,
    say_twiml,
)
from tests.providers.conftest import RecordingServer

SID = "AC" + "c" * 32


def call(**overrides) -> OutgoingMessage:
    fields = dict(
        attempt_id=11,
        channel="call",
        to="+15558675310",
        sender="MG" + "d" * 32,
        body="Oak Clinic reminds you of your visit tomorrow at 9.",
        kind="appt_confirmation",
        status_callback_url="https://carebell.example/hooks/twilio/status/11",
    )
    fields.update(overrides)
    return OutgoingMessage(**fields)


def provider(base_url: str) -> TwilioVoiceProvider:
    config = TwilioConfig(SID, "secret", sender="+15005550006", base_url=base_url)
    return TwilioVoiceProvider(config)


def test_it_creates_a_call_that_asks_carebell_for_twiml_with_machine_detection(settings):
    settings.BASE_URL = "https://carebell.example"

    async def go():
        reply = (201, {"sid": "CA" + "e" * 32, "status": "queued"}, {})
        async with RecordingServer(lambda _r: reply) as server:
            results = await provider(server.url).send_batch(None, [call()])
            return server.requests, results

    (request,), (result,) = asyncio.run(go())
    assert request.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    assert dict(request.form) == {
        "To": "+15558675310",
        "From": "+15005550006",  # a Messaging Service cannot place calls
        "Url": "https://carebell.example/hooks/twilio/voice/11",
        "Method": "POST",
        "MachineDetection": "Enable",
        "StatusCallback": "https://carebell.example/hooks/twilio/status/11",
    }
    assert (result.accepted, result.provider_message_id, result.status) == (
        True,
        "CA" + "e" * 32,
        "queued",
    )


def test_an_sms_given_to_the_voice_provider_is_unsupported():
    (result,) = asyncio.run(provider("http://127.0.0.1:9").send_batch(None, [call(channel="sms")]))
    assert (result.accepted, result.error_code) == (False, "unsupported")


def parse(twiml: str) -> ET.Element:
    return ET.fromstring(twiml)  # noqa: S314 - TwiML we just built ourselves


@pytest.mark.parametrize(
    ("language", "say_language", "prompt"),
    [("en", "en-US", "Press 1 to confirm"), ("es", "es-US", "Oprima 1 para confirmar")],
)
def test_a_person_hears_the_script_in_its_language_and_can_press_a_key(
    language, say_language, prompt
):
    script = VoiceScript("Body text", language, "Short", "https://c.example/hooks/twilio/gather/11")
    root = parse(answer_twiml(script, answered_by="human"))
    gather = root.find("Gather")
    assert gather.attrib["numDigits"] == "1"
    assert gather.attrib["action"] == "https://c.example/hooks/twilio/gather/11"
    says = gather.findall("Say")
    assert says[0].text == "Body text"
    assert prompt in says[1].text
    assert {s.attrib["language"] for s in root.iter("Say")} == {say_language}


def test_an_answering_machine_gets_the_short_message_and_no_gather():
    script = VoiceScript("Long body", "en", "Short body", "https://c.example/g/1")
    root = parse(answer_twiml(script, answered_by="machine_end_beep"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").text == "Short body"


def test_a_message_that_asks_nothing_has_no_gather():
    root = parse(answer_twiml(VoiceScript("Your order is ready."), answered_by="human"))
    assert root.find("Gather") is None
    assert root.find("Say").text == "Your order is ready."


def test_appointment_calls_ask_for_a_key_and_other_calls_do_not(settings):
    settings.BASE_URL = "https://carebell.example"
    asks = TwilioVoiceProvider.script_for(call())
    tells = TwilioVoiceProvider.script_for(call(kind="rx_ready"))
    assert asks.gather_url == "https://carebell.example/hooks/twilio/gather/11"
    assert tells.gather_url == ""


def test_the_answer_to_a_keypress_is_said_and_hung_up():
    root = parse(say_twiml("Gracias", "es"))
    assert [child.tag for child in root] == ["Say", "Hangup"]
    assert root.find("Say").attrib["language"] == "es-US"


@pytest.mark.parametrize(("digits", "action"), [("1", "confirm"), ("2", "cancel"), ("9", "")])
def test_it_reads_the_key_pressed(digits, action):
    keypress = parse_keypress({"CallSid": "CA1", "Digits": digits, "From": "+1555"}, 11)
    assert (keypress.call_sid, keypress.digits, keypress.action, keypress.attempt_id) == (
        "CA1",
        digits,
        action,
        11,
    )


@pytest.mark.parametrize(
    ("call_status", "expected"),
    [
        ("completed", ("delivered", False)),
        ("busy", ("undelivered", False)),
        ("no-answer", ("undelivered", False)),
        ("failed", ("failed", True)),
        ("ringing", None),
        ("in-progress", None),
    ],
)
def test_it_normalises_call_status_callbacks(call_status, expected):
    update = provider("http://x").parse_status({"CallSid": "CA1", "CallStatus": call_status}, 4)
    if expected is None:
        assert update is None
    else:
        assert (update.status, update.permanent) == expected
        assert update.event_id == f"CA1:{call_status}"
