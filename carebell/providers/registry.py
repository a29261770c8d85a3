"""Which provider serves a channel: globally from settings (CAREBELL_SMS_PROVIDER,
CAREBELL_VOICE_PROVIDER, CAREBELL_EMAIL_PROVIDER), optionally overridden per site.

Defaults are `console`: without configuration nothing real is ever contacted.

The simulated providers (`sim`, `sim_voice`, `sim_email`) exist only while
CAREBELL_SIM_ENABLED is on (the default in development and the demo, off in
production): otherwise they are neither chosen nor found by name, so their webhooks
answer 404 and nothing signed with a simulator's secret is believed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings

from carebell.core.vocab import Channel
from carebell.providers.base import Provider, Unsupported


def _twilio_sms() -> Provider:
    from carebell.providers.twilio.sms import TwilioSmsProvider

    return TwilioSmsProvider()


def _twilio_voice() -> Provider:
    from carebell.providers.twilio.voice import TwilioVoiceProvider

    return TwilioVoiceProvider()


def _sim(kind: str) -> Callable[[], Provider]:
    def build() -> Provider:
        from carebell.simulator import providers as sim

        return {"sms": sim.SimSmsProvider, "call": sim.SimVoiceProvider}.get(
            kind, sim.SimEmailProvider
        )()

    return build


def _smtp() -> Provider:
    from carebell.providers.smtp import SmtpProvider

    return SmtpProvider()


def _anymail() -> Provider:
    from carebell.providers.anymail_email import AnymailEmailProvider

    return AnymailEmailProvider()


def _console() -> Provider:
    from carebell.providers.console import ConsoleProvider

    return ConsoleProvider()


#: channel → (setting name, {provider name: factory}). Imports are lazy so choosing
#: the console never loads an HTTP or SMTP client.
CHOICES: dict[Channel, tuple[str, dict[str, Callable[[], Provider]]]] = {
    Channel.SMS: ("SMS_PROVIDER", {"twilio": _twilio_sms, "sim": _sim("sms"), "console": _console}),
    Channel.CALL: (
        "VOICE_PROVIDER",
        {"twilio": _twilio_voice, "sim": _sim("call"), "console": _console},
    ),
    Channel.EMAIL: (
        "EMAIL_PROVIDER",
        {"smtp": _smtp, "anymail": _anymail, "sim": _sim("email"), "console": _console},
    ),
}


#: The names the simulated phone and mailbox go by.
SIMULATED = frozenset({"sim", "sim_voice", "sim_email"})


def is_sim_enabled() -> bool:
    return bool(getattr(settings, "SIM_ENABLED", False))


def is_available(name: str) -> bool:
    """False for a simulated provider while the simulator is off."""
    return name not in SIMULATED or is_sim_enabled()


def provider_name(channel: Channel | str, site_overrides: Mapping[str, str] | None = None) -> str:
    """The provider name for `channel`: the site's override, else the setting."""
    channel = Channel(channel)
    setting, _ = CHOICES[channel]
    override = (site_overrides or {}).get(channel.value, "")
    return override or getattr(settings, setting, "console") or "console"


def get_provider(
    channel: Channel | str, site_overrides: Mapping[str, str] | None = None
) -> Provider:
    """A provider instance for `channel` (and a site's `{"sms": "sim", …}` overrides).

    An unknown name, or the simulator while it is off, raises Unsupported rather than
    falling back to something else.
    """
    channel = Channel(channel)
    name = provider_name(channel, site_overrides)
    factory = CHOICES[channel][1].get(name)
    if factory is None:
        raise Unsupported(f"{name} provider for {channel.value}")
    if not is_available(name):
        raise Unsupported(f"{name} provider for {channel.value} (CAREBELL_SIM_ENABLED is off)")
    return factory()


#: Each provider by its own `name` (as stored on attempts and used in webhook URLs),
#: so a webhook finds its provider without building every other one — building the
#: anymail provider, for one, needs an email service configured.
BY_NAME: dict[str, Callable[[], Provider]] = {
    "twilio": _twilio_sms,
    "twilio_voice": _twilio_voice,
    "sim": _sim("sms"),
    "sim_voice": _sim("call"),
    "sim_email": _sim("email"),
    "smtp": _smtp,
    "anymail": _anymail,
    "console": _console,
}


def provider_by_name(name: str) -> Provider | None:
    """The provider whose `name` is `name`, or None if there is none (or it is the
    simulator and the simulator is off)."""
    factory = BY_NAME.get(name)
    return factory() if factory is not None and is_available(name) else None
