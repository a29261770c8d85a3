from __future__ import annotations

import asyncio
import json
import logging

import pytest

from carebell.logs import StructuredFormatter
from carebell.providers.anymail_email import AnymailEmailProvider
from carebell.providers.base import OutgoingMessage, Unsupported
from carebell.providers.console import ConsoleProvider
from carebell.providers.registry import get_provider, provider_name
from carebell.providers.smtp import SmtpProvider
from carebell.providers.twilio.sms import TwilioSmsProvider
from carebell.providers.twilio.voice import TwilioVoiceProvider
from carebell.simulator.providers import SimEmailProvider, SimSmsProvider, SimVoiceProvider


@pytest.fixture
def unconfigured(settings):
    for name in ("SMS_PROVIDER", "VOICE_PROVIDER", "EMAIL_PROVIDER"):
        setattr(settings, name, "console")
    return settings


@pytest.mark.parametrize("channel", ["sms", "call", "email"])
def test_without_configuration_every_channel_goes_to_the_console(unconfigured, channel):
    assert isinstance(get_provider(channel), ConsoleProvider)


@pytest.mark.parametrize(
    ("setting", "value", "channel", "expected"),
    [
        ("SMS_PROVIDER", "twilio", "sms", TwilioSmsProvider),
        ("SMS_PROVIDER", "sim", "sms", SimSmsProvider),
        ("VOICE_PROVIDER", "twilio", "call", TwilioVoiceProvider),
        ("VOICE_PROVIDER", "sim", "call", SimVoiceProvider),
        ("EMAIL_PROVIDER", "smtp", "email", SmtpProvider),
        ("EMAIL_PROVIDER", "sim", "email", SimEmailProvider),
    ],
)
def test_the_setting_chooses_the_provider(unconfigured, setting, value, channel, expected):
    setattr(unconfigured, setting, value)
    assert type(get_provider(channel)) is expected


def test_anymail_is_chosen_with_its_service_name(unconfigured):
    unconfigured.EMAIL_PROVIDER, unconfigured.ANYMAIL_ESP = "anymail", "postmark"
    provider = get_provider("email")
    assert isinstance(provider, AnymailEmailProvider) and provider.esp == "postmark"


def test_a_site_override_wins_over_the_global_setting(unconfigured):
    unconfigured.SMS_PROVIDER = "twilio"
    assert provider_name("sms", {"sms": "sim"}) == "sim"
    assert provider_name("email", {"sms": "sim"}) == "console"
    assert isinstance(get_provider("sms", {"sms": "sim"}), SimSmsProvider)


def test_an_unknown_provider_name_is_refused_not_replaced(unconfigured):
    with pytest.raises(Unsupported):
        get_provider("sms", {"sms": "smtp"})


def test_the_console_accepts_everything_and_logs_ids_only(caplog):
    message = OutgoingMessage(
        attempt_id=5,
        channel="sms",
        to="+15558675310",
        sender="+15005550006",
        body="Hello Ana, your visit is tomorrow",
        site_id=2,
        kind="appt_reminder",
    )
    with caplog.at_level(logging.INFO, logger="carebell.providers.console"):
        (result,) = asyncio.run(ConsoleProvider().send_batch(None, [message]))
    assert (result.accepted, result.provider_message_id, result.status) == (
        True,
        "console-5",
        "sent",
    )
    (record,) = caplog.records
    line = json.loads(StructuredFormatter().format(record))
    assert line["attempt_id"] == 5 and line["site_id"] == 2 and line["kind"] == "appt_reminder"
    text = json.dumps(line)
    assert "8675310" not in text and "Ana" not in text and "tomorrow" not in text


def test_the_console_never_trusts_a_webhook():
    assert not ConsoleProvider().verify_signature("https://x", {}, {"X-Twilio-Signature": "x"})


def test_every_provider_is_found_by_the_name_it_gives_itself(settings):
    from carebell.providers.registry import BY_NAME, provider_by_name

    settings.ANYMAIL_ESP = "postmark"
    assert {name: provider_by_name(name).name for name in BY_NAME} == {n: n for n in BY_NAME}
    assert provider_by_name("nope") is None


def test_a_sim_email_callback_finds_its_provider_without_an_email_service(settings):
    from carebell.providers.registry import provider_by_name

    settings.ANYMAIL_ESP = ""
    assert provider_by_name("sim_email").name == "sim_email"


@pytest.mark.parametrize("name", ["sim", "sim_voice", "sim_email"])
def test_with_the_simulator_off_no_simulated_provider_is_found_by_name(settings, name):
    from carebell.providers.registry import provider_by_name

    settings.SIM_ENABLED = False
    assert provider_by_name(name) is None
    assert provider_by_name("console") is not None


@pytest.mark.parametrize("channel", ["sms", "call", "email"])
def test_with_the_simulator_off_choosing_it_is_refused_not_replaced(unconfigured, channel):
    unconfigured.SIM_ENABLED = False
    with pytest.raises(Unsupported, match="CAREBELL_SIM_ENABLED is off"):
        get_provider(channel, {channel: "sim"})
    unconfigured.SMS_PROVIDER = "sim"
    with pytest.raises(Unsupported):
        get_provider("sms")


def test_the_simulator_signs_with_no_fixed_secret(settings):
    from carebell.simulator.providers import sim_token
    from carebell.simulator.server import SimConfig

    assert SimConfig().auth_token != SimConfig().auth_token
    settings.SIM_AUTH_TOKEN = ""
    assert sim_token() == ""
    assert not SimSmsProvider().verify_signature("https://x", {}, {"X-Twilio-Signature": "x"})
    assert not SimEmailProvider().verify_signature("https://x", {}, {"X-Twilio-Signature": "x"})
